// Child processes for the tests that need real ones (shared memory, locks
// that die with their holder): fork a body that never returns into
// GoogleTest, talk to it through pipes, wait for it with a deadline.
//
//   Pipe reports;
//   ChildProcess child = ChildProcess::spawn([&] {
//     reports.close_read();
//     ... reports.send(value) ...
//     ::_exit(0);
//   });
//   reports.close_write();
//   auto value = reports.receive<std::uint64_t>(deadline);
//   EXPECT_TRUE(exited_ok(child.wait(deadline)));
//
// A child's body uses the library, write(2) and _exit() only: it never
// asserts (a failed gtest assertion in a child would report in the wrong
// process). ChildProcess's destructor kills (SIGKILL) and reaps a child that
// is still running, so that a failed assertion in the parent leaves none.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_CHILD_PROCESS_H_
#define IQDB_PERSIST_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace iqdb::persist::test {

using Clock = std::chrono::steady_clock;

// Writes all of `size` bytes; false on error.
inline bool write_all(int fd, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Reads exactly `size` bytes before `deadline`; false on EOF, error or timeout.
inline bool read_all(int fd, void* data, std::size_t size, Clock::time_point deadline) {
  auto* bytes = static_cast<char*>(data);
  while (size > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A pipe of fixed-size messages (trivially copyable values).
class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    read_ = fds[0];
    write_ = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  int read_fd() const { return read_; }
  int write_fd() const { return write_; }
  void close_read() { close(read_); }
  void close_write() { close(write_); }

  template <class T>
  bool send(const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write_all(write_, &value, sizeof value);
  }
  template <class T>
  std::optional<T> receive(Clock::time_point deadline) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    if (!read_all(read_, &value, sizeof value, deadline)) return std::nullopt;
    return value;
  }

 private:
  static void close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  int read_ = -1;
  int write_ = -1;
};

inline std::string describe_status(const std::optional<int>& status) {
  if (!status) return "hung (killed after the deadline)";
  if (WIFEXITED(*status)) return fmt::format("exited with {}", WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return fmt::format("killed by signal {}", WTERMSIG(*status));
  return fmt::format("status {}", *status);
}

inline bool exited_ok(const std::optional<int>& status) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

inline bool killed_by(const std::optional<int>& status, int signal) {
  return status && WIFSIGNALED(*status) && WTERMSIG(*status) == signal;
}

class ChildProcess {
 public:
  // Forks; the child runs `body`, then exits with 99 if the body returned.
  // A child dies with its parent (no orphan outlives a crashed test).
  template <class Body>
  static ChildProcess spawn(Body body) {
    std::fflush(nullptr);  // nothing buffered may be written twice
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(98);
      body();
      ::_exit(99);
    }
    return ChildProcess(pid);
  }

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}
  ChildProcess& operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
      kill_and_reap();
      pid_ = std::exchange(other.pid_, -1);
      status_ = other.status_;
    }
    return *this;
  }
  ~ChildProcess() { kill_and_reap(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }

  // waitpid until `deadline`; then SIGKILL and nullopt (a hang).
  std::optional<int> wait(Clock::time_point deadline) {
    if (status_ || pid_ <= 0) return status_;
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) return status_ = status;
      if (done < 0 && errno != EINTR) return std::nullopt;
      if (Clock::now() >= deadline) {
        kill_and_reap();
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // SIGKILL, and the status once reaped.
  std::optional<int> kill() {
    if (status_ || pid_ <= 0) return status_;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) return std::nullopt;
    }
    return status_ = status;
  }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void kill_and_reap() {
    if (pid_ > 0 && !status_) (void)kill();
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_CHILD_PROCESS_H_
