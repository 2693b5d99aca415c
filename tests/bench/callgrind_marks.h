/* callgrind_marks.h: the callgrind client requests the instruction-count
 * benchmarks mark their phases with, or nothing when valgrind's header is
 * not installed (the benchmarks then only run, uncounted). */
#ifndef OT_BENCH_CALLGRIND_MARKS_H
#define OT_BENCH_CALLGRIND_MARKS_H

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(name) ((void)(name))
#endif

#endif
