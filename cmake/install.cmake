# cmake --install: libraries (shared with soname, and static), public
# headers, nxc, man page, pkg-config files and a CMake package, laid out by
# GNUInstallDirs. Everything installed finds its libraries relative to
# itself ($ORIGIN), so a prefix can be moved.
include(CMakePackageConfigHelpers)

file(RELATIVE_PATH NXC_BIN_TO_LIB ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set_target_properties(nxc PROPERTIES INSTALL_RPATH "$ORIGIN/${NXC_BIN_TO_LIB}")

set(NXC_INSTALL_TARGETS nixl_connect)
set(NXC_INSTALL_HEADERS include/nixl_connect.h)
if(NXC_HAVE_NATS)
  set_target_properties(nixl_connect_nats PROPERTIES INSTALL_RPATH "$ORIGIN")
  list(APPEND NXC_INSTALL_TARGETS nixl_connect_nats)
  list(APPEND NXC_INSTALL_HEADERS include/nixl_connect_nats.h)
endif()

install(TARGETS ${NXC_INSTALL_TARGETS} EXPORT nixl_connect-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nixl_connect_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${NXC_INSTALL_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS nxc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
configure_file(docs/nxc.1 nxc.1 @ONLY)   # the version from the header
install(FILES ${CMAKE_BINARY_DIR}/nxc.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# pkg-config: the private libraries only matter to a static link.
# The prefix is found from the .pc file's place, so --prefix at install
# time (and moving the prefix) keeps it right.
set(NXC_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH NXC_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
configure_file(cmake/nixl_connect.pc.in nixl_connect.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/nixl_connect.pc DESTINATION ${NXC_PC_DIR})
if(NXC_HAVE_NATS)
  configure_file(cmake/nixl_connect_nats.pc.in nixl_connect_nats.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/nixl_connect_nats.pc DESTINATION ${NXC_PC_DIR})
endif()

# find_package(nixl_connect CONFIG): nixl_connect::nixl_connect, and
# nixl_connect::nats when the module was built.
set(NXC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nixl_connect)
install(EXPORT nixl_connect-targets NAMESPACE nixl_connect:: DESTINATION ${NXC_CMAKE_DIR})
configure_package_config_file(cmake/nixl_connectConfig.cmake.in
  ${CMAKE_BINARY_DIR}/nixl_connectConfig.cmake INSTALL_DESTINATION ${NXC_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/nixl_connectConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/nixl_connectConfig.cmake
              ${CMAKE_BINARY_DIR}/nixl_connectConfigVersion.cmake
        DESTINATION ${NXC_CMAKE_DIR})
