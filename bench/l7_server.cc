// A minimal epoll HTTP/1.1 server for bench/l7_bench.sh: keep-alive, one
// fixed 200 per request head, so the benchmark measures the datapath (with
// and without the L7 policy), not a slow server. Single-threaded.
//   l7_server <port>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: l7_server <port>\n");
    return 2;
  }
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  epoll_event ev{EPOLLIN, {.fd = l}};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  std::unordered_map<int, std::string> bufs;
  static const char kResp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  std::printf("ready\n");
  std::fflush(stdout);
  epoll_event evs[64];
  char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == l) {
        for (int c; (c = accept4(l, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          epoll_event e{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
        continue;
      }
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          auto& b = bufs[fd];
          b.append(buf, r);
          size_t pos;
          while ((pos = b.find("\r\n\r\n")) != std::string::npos) {
            b.erase(0, pos + 4);
            (void)!write(fd, kResp, sizeof kResp - 1);
          }
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;  // EAGAIN also when a stream parser holds bytes
        bufs.erase(fd);
        close(fd);
        break;
      }
    }
  }
}
