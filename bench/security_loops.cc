// The loops bench/security_overhead.sh times under each observer (nothing,
// empty tracepoints, Kagami's security module with the default policy,
// bpftrace, libbpf-tools): `security_loops open N` opens and closes
// /etc/hostname N times; `security_loops exec N` forks and execs /bin/true N
// times. Prints "<mode> <ns per iteration>" on stdout.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "open") != 0 && std::strcmp(argv[1], "exec") != 0)) {
    std::fprintf(stderr, "usage: security_loops open|exec N\n");
    return 2;
  }
  const long n = std::strtol(argv[2], nullptr, 10);
  if (n <= 0) return 2;
  const bool open_loop = argv[1][0] == 'o';
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    if (open_loop) {
      const int fd = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 1;
      ::close(fd);
    } else {
      const pid_t p = ::fork();
      if (p == 0) {
        char* const av[] = {const_cast<char*>("true"), nullptr};
        ::execv("/bin/true", av);
        _exit(127);
      }
      int st = 0;
      ::waitpid(p, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    }
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s %.1f\n", argv[1], ns / double(n));
  return 0;
}
