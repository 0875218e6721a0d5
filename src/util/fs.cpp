#include "grpo/util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "grpo/util/error.h"

namespace grpo::fs {
namespace {
[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw InputError(str(what, " '", path, "': ", std::strerror(errno)));
}
}  // namespace

std::string data_dir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (auto d = env("GRPO_DATA_DIR"); !d.empty()) return d;
  if (auto c = env("GRPO_CACHE_DIR"); !c.empty()) return c + "/data";
  if (auto x = env("XDG_CACHE_HOME"); !x.empty()) return x + "/grpo/data";
  auto h = env("HOME");
  return (h.empty() ? std::string(".") : h) + "/.cache/grpo/data";
}

std::string expand_path(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* h = std::getenv("HOME");
    if (h && *h) return std::string(h) + path.substr(1);
  }
  for (const char* var : {"$GRPO_DATA_DIR/", "${GRPO_DATA_DIR}/"})
    if (path.rfind(var, 0) == 0) return data_dir() + path.substr(std::strlen(var) - 1);
  return path;
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("cannot fsync directory", dir);
}

namespace {
// Writes all of `data` to `fd`; on failure closes fd, runs `cleanup` and throws naming `name`.
void write_all(int fd, const std::string& data, const std::string& name, void (*cleanup)(const std::string&)) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      if (cleanup) cleanup(name);
      errno = e;
      fail("cannot write", name);
    }
    off += static_cast<size_t>(n);
  }
}
}  // namespace

void atomic_write(const std::string& path, const std::string& data) {
  std::filesystem::path p(path);
  std::error_code ec;
  const auto st = std::filesystem::status(p, ec);  // follows symlinks
  const bool dev_path = path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;
  if (!ec && std::filesystem::exists(st) && (!std::filesystem::is_regular_file(st) || dev_path)) {
    // A device, FIFO or /dev/stdout (which may lead to the file the shell redirected stdout
    // to): nothing to replace atomically, and a rename would put a new file in place of the
    // device node, the link or the redirect target. Write through it, appending as a stream does.
    GRPO_REQUIRE(!std::filesystem::is_directory(st), "cannot write '", path, "': it is a directory");
    // Our own stdout/stderr: write to the descriptor itself, so the text lands at the stream's
    // position (a second open of a redirected file would start at offset 0).
    int own = path == "/dev/stdout" || path == "/proc/self/fd/1" ? 1 : path == "/dev/stderr" || path == "/proc/self/fd/2" ? 2 : -1;
    if (own >= 0) {
      std::cout.flush();
      std::cerr.flush();
      std::fflush(nullptr);
      int fd = ::dup(own);  // write_all closes it on failure; our 1/2 stay open
      if (fd < 0) fail("cannot write", path);
      write_all(fd, data, path, nullptr);
      ::close(fd);
      return;
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) fail("cannot open", path);
    write_all(fd, data, path, nullptr);
    ::close(fd);
    return;
  }
  // A symlink to a regular file: replace the file it points to and keep the link.
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(p, ec)) && !ec) {
    auto target = std::filesystem::weakly_canonical(p, ec);
    if (!ec) p = target;
  }
  const std::string target = p.string();
  std::string dir = p.parent_path().string();
  std::string tmp = target + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", tmp);
  write_all(fd, data, tmp, [](const std::string& t) { ::unlink(t.c_str()); });
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), target.c_str()) != 0) fail("cannot rename into", target);
  fsync_dir(dir);
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(str("file not found: '", path, "'"));
  if (std::filesystem::is_directory(path, ec)) throw InputError(str("'", path, "' is a directory, expected a file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace grpo::fs
