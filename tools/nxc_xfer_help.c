/* nxc serve/get/recv/put: the help texts (tests/cli/golden holds them). */
#include <stdio.h>

#include "nxc.h"

/* Option lines the four texts share word for word. */
#define HELP_NATS_CREDS \
"  --nats-creds FILE  a NATS credentials file (.creds: user JWT and NKey\n" \
"                 seed) for servers with operator/account JWT auth\n"
#define HELP_NO_LIMIT \
"                 [default: wait without limit]\n"
#define HELP_JSON_AND_HELP \
"  --json         end with one JSON object on standard output: the result\n" \
"                 (ok, exit, bytes, seconds, gbps; or error and message)\n" \
"  -h, --help     show this help and exit\n"

void serve_help(void)
{
    fputs(
"Usage: nxc serve [options] FILE|-\n"
"\n"
"Exposes FILE as a readable operation and offers its metadata: one line of\n"
"JSON on standard output or, with --nats, the answer to every request on a\n"
"NATS subject. Waits until a peer has read it with 'nxc get', prints the\n"
"rate on standard error and exits. The file is exposed as descriptors of\n"
"at most 1 GiB each; their sizes add up to its size. FILE '-' reads all of\n"
"standard input into memory first. SIGINT or SIGTERM end it with exit\n"
"status 130 or 143.\n"
"\n"
"Options:\n"
"  --nats URL     offer the metadata over NATS (e.g. nats://host:4222)\n"
"                 instead of standard output; needs --subject (builds\n"
"                 with the NATS module only)\n"
"  --subject S    the NATS subject to answer on (e.g. files.model)\n"
HELP_NATS_CREDS
"  --nixl         offer NIXL's metadata format, for a Dynamo (NIXL) worker\n"
"                 to read the file with its begin_read\n"
"  --direct-local let a reader on this host copy the file straight out of\n"
"                 this process (process_vm_readv), without waking it\n"
"                 (the library's direct_local, on by default unless\n"
"                 NXC_DIRECT_LOCAL=0; not with --nixl)\n"
"  --timeout SEC  fail if the file has not been read after SEC seconds\n"
HELP_NO_LIMIT
HELP_JSON_AND_HELP
"\n"
"Examples:\n"
"  nxc serve model.bin | ssh host2 nxc get - model.bin\n"
"  nxc serve --nats nats://10.0.0.1:4222 --subject files.model model.bin\n"
"  (and on the other host, with the same --nats and --subject:\n"
"   nxc get --nats nats://10.0.0.1:4222 --subject files.model model.bin)\n",
        stdout);
}

void get_help(void)
{
    fputs(
"Usage: nxc get [options] [METADATA|-] OUT|-\n"
"       nxc get [options] --nats URL --subject S OUT|-\n"
"\n"
"Reads a file served by 'nxc serve' into OUT, whose size is the total of the\n"
"metadata's descriptor sizes. METADATA is the JSON line printed by serve,\n"
"or @PATH to read it from a file, or '-' (the default when only OUT is\n"
"given) to read the first line of standard input. With --nats the metadata\n"
"is requested on a NATS subject, again and again until 'nxc serve --nats'\n"
"answers. Shows progress on standard error when it is a terminal and ends\n"
"with the rate. OUT is removed if the transfer fails or is interrupted\n"
"(SIGINT, SIGTERM: the peer is told, exit status 130 or 143). OUT '-'\n"
"writes the bytes to standard output once they have all arrived.\n"
"\n"
"Options:\n"
"  --nats URL     request the metadata over NATS (e.g. nats://host:4222);\n"
"                 needs --subject (builds with the NATS module only)\n"
"  --subject S    the NATS subject 'nxc serve --nats' answers on\n"
HELP_NATS_CREDS
"  --timeout SEC  fail if the file has not arrived after SEC seconds,\n"
"                 counting the wait for the metadata\n"
HELP_NO_LIMIT
HELP_JSON_AND_HELP,
        stdout);
}

void recv_help(void)
{
    fputs(
"Usage: nxc recv [options] --size BYTES OUT\n"
"       nxc recv [options] --size BYTES --nats URL --subject S OUT|-\n"
"\n"
"Creates OUT with BYTES bytes, exposes it as a writable operation and hands\n"
"its metadata over: one line of JSON on standard output or, with --nats,\n"
"sent to the worker listening on a NATS subject ('nxc put --nats'), again\n"
"and again until one takes it. Waits until a peer has written OUT with\n"
"'nxc put', prints the rate on standard error and exits. OUT is exposed as\n"
"descriptors of at most 1 GiB each, and removed if the write fails or is\n"
"interrupted (SIGINT, SIGTERM: exit status 130 or 143). With --nats, OUT\n"
"'-' writes the bytes to standard output once they have all arrived.\n"
"\n"
"Options:\n"
"  --size BYTES   the size of OUT, with an optional suffix K, M or G\n"
"                 (powers of 1024); the file put must have this size\n"
"  --nats URL     send the metadata over NATS (e.g. nats://host:4222)\n"
"                 instead of standard output; needs --subject (builds\n"
"                 with the NATS module only)\n"
"  --subject S    the NATS subject the writer listens on\n"
HELP_NATS_CREDS
"  --nixl         offer NIXL's metadata format, for a Dynamo (NIXL) worker\n"
"                 to write OUT with its begin_write\n"
"  --direct-local let a writer on this host copy straight into this\n"
"                 process (process_vm_writev), without waking it (the\n"
"                 library's direct_local, on by default unless\n"
"                 NXC_DIRECT_LOCAL=0; not with --nixl)\n"
"  --timeout SEC  fail if OUT has not been written after SEC seconds,\n"
"                 counting the wait for a writer to take the metadata\n"
HELP_NO_LIMIT
HELP_JSON_AND_HELP
"\n"
"Examples:\n"
"  nxc recv --size 1G copy.bin | ssh host2 nxc put model.bin -\n"
"  nxc recv --size 1G --nats nats://10.0.0.1:4222 --subject w.prefill copy.bin\n"
"  (and on the other host, with the same --nats and --subject:\n"
"   nxc put --nats nats://10.0.0.1:4222 --subject w.prefill model.bin)\n",
        stdout);
}

void put_help(void)
{
    fputs(
"Usage: nxc put [options] FILE|- [METADATA|-]\n"
"       nxc put [options] --nats URL --subject S FILE|-\n"
"\n"
"Writes FILE into the memory a peer exposed with 'nxc recv'. METADATA is\n"
"the JSON line printed by recv, or @PATH to read it from a file, or '-'\n"
"(the default when only FILE is given) to read the first line of standard\n"
"input. With --nats put listens on a NATS subject and takes the first\n"
"metadata sent there. FILE's size must equal the total of the metadata's\n"
"descriptor sizes; FILE '-' reads all of standard input into memory first\n"
"(the metadata must then be given as text or @PATH). Shows progress on\n"
"standard error when it is a terminal and ends with the rate. SIGINT or\n"
"SIGTERM cancel the write (the peer is told; exit status 130 or 143).\n"
"\n"
"Options:\n"
"  --nats URL     receive the metadata over NATS (e.g. nats://host:4222);\n"
"                 needs --subject (builds with the NATS module only)\n"
"  --subject S    the NATS subject to listen on\n"
HELP_NATS_CREDS
"  --timeout SEC  fail if FILE has not been written after SEC seconds,\n"
"                 counting the wait for the metadata\n"
HELP_NO_LIMIT
HELP_JSON_AND_HELP,
        stdout);
}
