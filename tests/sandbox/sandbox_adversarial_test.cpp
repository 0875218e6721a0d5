// The adversarial suite: hostile programs, each with the exact status it must get and a check
// that the host is unharmed. Limits are small (sandbox_test_util.h: wall 3 s, CPU 1 s, 256 MiB,
// 16 processes, 4 MiB files, 4 KiB of output) so the suite stays well under a minute; wall-time
// assertions leave slack because the machine is shared (load often far above its 2 cores).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "grpo/reward/sandbox.h"
#include "grpo/reward/sandbox_harness.h"
#include "sandbox/sandbox_test_util.h"

namespace grpo::test {
namespace {

using reward::SandboxStatus;
namespace fs = std::filesystem;

#define EXPECT_STATUS(r, s)                                                                        \
  EXPECT_EQ(reward::status_name((r).status), reward::status_name(s))                              \
      << "stage=" << (r).stage << " exit=" << (r).exit_code << " signal=" << (r).signal              \
      << " wall=" << (r).wall_s << " error=" << (r).error << "\nstdout: " << (r).stdout_data.substr(0, 500) \
      << "\nstderr: " << (r).stderr_data.substr(0, 800)

std::string planted_prefix() { return "grpo_sandbox_test_" + std::to_string(getpid()) + "_"; }

// A host directory with a planted file, removed at the end of each test that uses it.
struct PlantedDir {
  fs::path dir;
  fs::path secret;
  std::string content;
  PlantedDir() {
    std::mt19937_64 rng(std::random_device{}());
    dir = fs::temp_directory_path() / (planted_prefix() + std::to_string(rng()));
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::all);  // even world-writable: only the sandbox's view protects it
    secret = dir / "secret.txt";
    content = "planted-secret-" + std::to_string(rng());
    std::ofstream(secret) << content;
    fs::permissions(secret, fs::perms::all);
  }
  ~PlantedDir() { fs::remove_all(dir); }
  std::vector<std::string> entries() const {
    std::vector<std::string> v;
    for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
    return v;
  }
};

// A host process running as the sandbox's uid: kill(-1) or kill(pid) from a run must not reach it.
struct Sentinel {
  pid_t pid = -1;
  Sentinel() {
    pid = fork();
    if (pid == 0) {
      if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(1);
      execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
      _exit(1);
    }
    usleep(50000);
  }
  bool alive() const {
    int st = 0;
    return waitpid(pid, &st, WNOHANG) == 0;
  }
  ~Sentinel() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

TEST(SandboxAdversarial, BaselinePythonAndCppRunAndReadStdin) {
  auto r = run_py("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n", "2 3 37\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "42\n");
  EXPECT_GT(r.peak_memory_bytes, 1 << 20);  // a Python interpreter is several MiB resident
  auto c = run_cpp("#include <cstdio>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a*b);}\n", "6 7");
  EXPECT_STATUS(c, SandboxStatus::OK);
  EXPECT_EQ(c.stdout_data, "42\n");
  auto f = run_py("import sys\nsys.exit(3)\n");
  EXPECT_STATUS(f, SandboxStatus::FAILED);
  EXPECT_EQ(f.exit_code, 3);
}

TEST(SandboxAdversarial, ForkBombIsContainedAndLeavesNoProcess) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  auto r = run_py("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
  EXPECT_STATUS(r, SandboxStatus::TIMEOUT);
  EXPECT_LT(r.wall_s, 8.0);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());  // every copy carries the marker in its argv
}

TEST(SandboxAdversarial, InfiniteLoopHitsTheCpuLimit) {
  auto r = run_py("while True:\n    pass\n");
  EXPECT_STATUS(r, SandboxStatus::TIMEOUT);
  // RLIMIT_CPU of 1 s (SIGXCPU), unless the wall limit came first on a loaded machine.
  EXPECT_TRUE(r.cpu_s >= 0.9 || r.wall_s >= 2.9) << r.cpu_s << " " << r.wall_s;
}

TEST(SandboxAdversarial, LoopIgnoringSigtermIsKilledAtTheWallLimit) {
  auto r = run_py(
      "import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
      "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)\n");
  EXPECT_STATUS(r, SandboxStatus::TIMEOUT);
  EXPECT_GE(r.wall_s, 2.9);
  EXPECT_LT(r.wall_s, 8.0);
}

TEST(SandboxAdversarial, MemoryHogHitsTheMemoryLimit) {
  auto r = run_py("chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n");
  EXPECT_STATUS(r, SandboxStatus::MEMORY_LIMIT);
  EXPECT_LE(r.peak_memory_bytes, 256LL << 20);
  auto big = run_py("x = bytearray(1 << 30)\n");
  EXPECT_STATUS(big, SandboxStatus::MEMORY_LIMIT);
}

TEST(SandboxAdversarial, GigabyteOfOutputIsCappedAndDrained) {
  auto r = run_py("import sys\nb = b'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.buffer.write(b)\n");
  EXPECT_STATUS(r, SandboxStatus::OUTPUT_LIMIT);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data, std::string(4096, 'x'));
  auto e = run_py("import sys\nfor _ in range(100000):\n    sys.stderr.write('e' * 100)\n");
  EXPECT_STATUS(e, SandboxStatus::OUTPUT_LIMIT);
  EXPECT_TRUE(e.stderr_truncated);
  EXPECT_EQ(e.stderr_data.size(), 4096u);
}

TEST(SandboxAdversarial, TenGigabyteFileStopsAtTheFileSizeLimit) {
  struct statvfs before {};
  ASSERT_EQ(statvfs(fs::temp_directory_path().c_str(), &before), 0);
  auto r = run_py("b = b'\\0' * (1 << 20)\nwith open('big.bin', 'wb') as f:\n    for _ in range(10240):\n        f.write(b)\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_NE(r.stderr_data.find("File too large"), std::string::npos) << r.stderr_data;
  // C++ does not ignore SIGXFSZ the way Python does.
  auto c = run_cpp("#include <cstdio>\nint main(){FILE*f=fopen(\"big.bin\",\"wb\");static char b[1<<20];"
                   "for(int i=0;i<10240;++i) fwrite(b,1,sizeof b,f);}\n");
  EXPECT_STATUS(c, SandboxStatus::KILLED_BY_SIGNAL);
  EXPECT_EQ(c.signal, SIGXFSZ);
}

TEST(SandboxAdversarial, NoNetworkToAHostListener) {
  GRPO_REQUIRE_ISOLATION(net_ns);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(ls, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(ls, 8), 0);
  socklen_t len = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  auto r = run_py("import socket\ns = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                  "), timeout=1)\ns.sendall(b'hello')\nprint('connected')\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_EQ(r.stdout_data, "");
  int c = accept(ls, nullptr, nullptr);
  EXPECT_LT(c, 0) << "the listener saw a connection";
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
  if (c >= 0) close(c);
  close(ls);
}

TEST(SandboxAdversarial, CannotReadAFilePlantedOutside) {
  PlantedDir p;
  auto r = run_py("print(open('" + p.secret.string() + "').read())\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_EQ(r.stdout_data.find(p.content), std::string::npos);
  EXPECT_NE(r.stderr_data.find("FileNotFoundError"), std::string::npos);
  // Nor through the host's root, /proc/1/root, or the original cwd.
  auto r2 = run_py("import os\nfor p in ['/proc/1/root" + p.secret.string() + "', '/old_root" + p.secret.string() +
                   "']:\n    try:\n        print(open(p).read())\n    except OSError:\n        pass\n");
  EXPECT_STATUS(r2, SandboxStatus::OK);
  EXPECT_EQ(r2.stdout_data.find(p.content), std::string::npos);
}

TEST(SandboxAdversarial, CannotWriteOutsideTheWorkDirectory) {
  PlantedDir p;
  auto r = run_py("import os\nok = []\nfor path in ['/usr/grpo_evil', '/etc/grpo_evil', '/grpo_evil', '/dev/grpo_evil', '" +
                  (p.dir / "new.txt").string() + "', '" + p.secret.string() +
                  "']:\n    try:\n        open(path, 'w').write('x')\n        ok.append(path)\n    except OSError:\n"
                  "        pass\nopen('inside.txt', 'w').write('fine')\nprint(ok)\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "[]\n");
  EXPECT_EQ(slurp(p.secret.string()), p.content);
  EXPECT_EQ(p.entries(), std::vector<std::string>{"secret.txt"});
  EXPECT_FALSE(fs::exists("/usr/grpo_evil"));
  EXPECT_FALSE(fs::exists("/etc/grpo_evil"));
  EXPECT_FALSE(fs::exists("/grpo_evil"));
}

TEST(SandboxAdversarial, KillingTheParentFails) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  auto r = run_py("import os\nos.kill(os.getppid(), 9)\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_NE(r.stderr_data.find("PermissionError"), std::string::npos);
}

TEST(SandboxAdversarial, KillMinusOneReachesOnlyTheRunItself) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  Sentinel s;
  ASSERT_TRUE(s.alive());
  // kill(-1) signals every process the caller may signal except itself (and the namespace's init).
  auto r = run_py("import ctypes, os\nif os.fork() == 0:\n    import time\n    time.sleep(5)\n"
                  "print(ctypes.CDLL(None).kill(-1, 9))\nprint(os.wait()[1])\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "0\n9\n");  // its own child died of SIGKILL
  EXPECT_TRUE(s.alive()) << "a host process of the same uid was killed";
}

TEST(SandboxAdversarial, DoubleForkedDaemonDoesNotSurviveTheRun) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  const std::string marker = "grpo-daemon-" + std::to_string(getpid());
  auto r = run_py("import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                  "        os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(60)', '" +
                  marker + "'])\n    os._exit(0)\nos.wait()\nimport time\ntime.sleep(0.3)\nprint('parent done')\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "parent done\n");
  EXPECT_TRUE(pids_with_marker(marker).empty());
}

TEST(SandboxAdversarial, ThousandsOfThreadsAreRefused) {
  auto r = run_py("import threading, time\nts = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(5000)]\n"
                  "for t in ts:\n    t.start()\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_NE(r.stderr_data.find("can't start new thread"), std::string::npos);
}

TEST(SandboxAdversarial, DeepRecursion) {
  auto py = run_py("def f(n):\n    return f(n + 1) + 1\nf(0)\n");
  EXPECT_STATUS(py, SandboxStatus::FAILED);
  EXPECT_NE(py.stderr_data.find("RecursionError"), std::string::npos);
  // Native recursion overflows the 8 MiB stack.
  auto c = run_cpp("int f(int n){ volatile char b[1024]; b[0]=(char)n; return n ? f(n+1)+b[0] : 0; }\n"
                   "int main(){ return f(1); }\n");
  EXPECT_STATUS(c, SandboxStatus::KILLED_BY_SIGNAL);
  EXPECT_EQ(c.signal, SIGSEGV);
}

TEST(SandboxAdversarial, ClosingOrRedirectingStdout) {
  auto closed = run_py("import os\nos.close(1)\nprint('x')\n");
  EXPECT_STATUS(closed, SandboxStatus::FAILED);
  EXPECT_EQ(closed.exit_code, 120);  // Python's exit code when flushing stdout fails at exit
  auto redirected = run_py("import os\nos.dup2(os.open('/dev/null', os.O_WRONLY), 1)\nprint('hidden')\n");
  EXPECT_STATUS(redirected, SandboxStatus::OK);
  EXPECT_EQ(redirected.stdout_data, "");
}

TEST(SandboxAdversarial, PtraceIsRefused) {
  GRPO_REQUIRE_ISOLATION(seccomp);
  auto r = run_py("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n"  // PTRACE_ATTACH to init
                  "print(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n");  // PTRACE_TRACEME
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "-1 1\n-1 1\n");  // EPERM from the seccomp filter
}

TEST(SandboxAdversarial, ProcShowsOnlyTheRunsOwnProcesses) {
  GRPO_REQUIRE_ISOLATION(proc);
  GRPO_REQUIRE_ISOLATION(pid_ns);
  auto r = run_py("import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\nprint(pids)\n"
                  "try:\n    open('/proc/1/environ').read()\n    print('read init environ')\nexcept OSError:\n"
                  "    print('denied')\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "[1, 2]\ndenied\n");  // init and the program itself, in the run's PID namespace
}

TEST(SandboxAdversarial, SignalsToOtherPidsReachNothing) {
  GRPO_REQUIRE_ISOLATION(pid_ns);
  Sentinel s;
  auto r = run_py("import os\nn = 0\nme = os.getpid()\nfor pid in range(1, 5000):\n    if pid == me:\n        continue\n"
                  "    try:\n        os.kill(pid, 9)\n        n += 1\n    except OSError:\n        pass\nprint(n)\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "0\n");
  EXPECT_TRUE(s.alive());
}

TEST(SandboxAdversarial, DevicesBeyondNullZeroUrandomAreAbsent) {
  GRPO_REQUIRE_ISOLATION(mount_ns);
  auto r = run_py("import os\nopened = []\nfor d in ['/dev/sda', '/dev/vda', '/dev/mem', '/dev/kmem', '/dev/kmsg', "
                  "'/dev/port', '/dev/tty', '/dev/random', '/dev/nvidia0', '/dev/fuse', '/dev/net/tun']:\n    try:\n"
                  "        os.close(os.open(d, os.O_RDONLY))\n        opened.append(d)\n    except OSError:\n"
                  "        pass\nprint(opened, sorted(os.listdir('/dev')))\nprint(len(open('/dev/urandom','rb').read(8)))\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data,
            "[] ['fd', 'null', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']\n8\n");
}

TEST(SandboxAdversarial, EnvironmentIsClearedOfTheTrainersVariables) {
  setenv("GRPO_TEST_SECRET_TOKEN", "hunter2", 1);
  auto r = run_py("import os\nprint(sorted(os.environ.items()))\n");
  unsetenv("GRPO_TEST_SECRET_TOKEN");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data,
            "[('HOME', '/tmp'), ('LANG', 'C.UTF-8'), ('PATH', '/usr/local/bin:/usr/bin:/bin')]\n");
  auto p = run_py("print(open('/proc/1/environ','rb').read())\n");  // init's environment is not readable either
  EXPECT_STATUS(p, SandboxStatus::FAILED);
  EXPECT_EQ(p.stdout_data.find("hunter2"), std::string::npos);
}

TEST(SandboxAdversarial, OnlyStdioDescriptorsAreInherited) {
  // A descriptor the host leaks without O_CLOEXEC must not reach the program.
  int leaked = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  auto r = run_py("import os\nvalid = []\nwritten = []\nfor fd in range(1024):\n    try:\n        os.fstat(fd)\n"
                  "        valid.append(fd)\n    except OSError:\n        pass\nfor fd in range(3, 1024):\n    try:\n"
                  "        os.write(fd, b'x')\n        written.append(fd)\n    except OSError:\n        pass\n"
                  "print(valid, written)\n");
  close(leaked);
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "[0, 1, 2] []\n");
}

TEST(SandboxAdversarial, SymlinkFromAnOutputFileToAHostFile) {
  PlantedDir p;
  auto r = run_py("import os\nfor i, t in enumerate(['/etc/passwd', '" + p.secret.string() + "', '/usr/bin/python3']):\n"
                  "    os.symlink(t, 'out%d.txt' % i)\n    try:\n        open('out%d.txt' % i, 'w').write('pwned')\n"
                  "        print('wrote', t)\n    except OSError:\n        pass\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_EQ(r.stdout_data, "");
  EXPECT_EQ(slurp(p.secret.string()), p.content);
  EXPECT_EQ(slurp("/etc/passwd").find("pwned"), std::string::npos);
}

TEST(SandboxAdversarial, GigabyteIntoDevShmStaysInTheRun) {
  struct statvfs before {};
  ASSERT_EQ(statvfs("/dev/shm", &before), 0);
  auto r = run_py("b = b'\\0' * (1 << 20)\nwith open('/dev/shm/grpo_fill', 'wb') as f:\n    for _ in range(1024):\n"
                  "        f.write(b)\n");
  EXPECT_STATUS(r, SandboxStatus::FAILED);
  EXPECT_FALSE(fs::exists("/dev/shm/grpo_fill"));
}

TEST(SandboxAdversarial, CppIncludesOfDevicesAndHostFilesFailToCompile) {
  auto rnd = run_cpp("#include </dev/random>\nint main(){}\n");
  EXPECT_STATUS(rnd, SandboxStatus::FAILED);
  EXPECT_EQ(rnd.stage, "compile");
  EXPECT_NE(rnd.stderr_data.find("No such file"), std::string::npos);
  auto pw = run_cpp("#include </etc/passwd>\nint main(){}\n");
  EXPECT_STATUS(pw, SandboxStatus::FAILED);
  EXPECT_EQ(pw.stage, "compile");
}

TEST(SandboxAdversarial, CompilerOutputExplosionIsCapped) {
  // Each of the 200 nested self-inclusions reports an error with its whole include stack.
  auto r = run_cpp("#include __FILE__\nint x = ;\n");
  EXPECT_STATUS(r, SandboxStatus::OUTPUT_LIMIT);
  EXPECT_EQ(r.stage, "compile");
  EXPECT_TRUE(r.stderr_truncated);
  EXPECT_EQ(r.stderr_data.size(), 4096u);
}

TEST(SandboxAdversarial, HarnessRejectsEarlyExitPatchesAndForgedVerdicts) {
  const std::vector<std::string> two = {"assert add(1, 2) == 3", "assert add(2, 0) == 2"};
  auto verdict = [&](const std::string& program, const std::vector<std::string>& tests = {}) {
    reward::SandboxRequest req;
    req.source = reward::python_assert_harness();
    const auto& t = tests.empty() ? two : tests;
    req.files = {{"program.py", program}, {"tests.json", nlohmann::json(t).dump()}};
    req.args = {"2"};
    std::string nonce = reward::make_nonce();
    auto r = shared_sandbox().run(req, nonce + "\n");
    auto v = reward::parse_harness_verdict(r.stdout_data, nonce, static_cast<int>(t.size()));
    return v ? v->passed : -1;
  };
  EXPECT_EQ(verdict("def add(a, b):\n    return a + b\n"), 2);
  EXPECT_EQ(verdict("def add(a, b):\n    return a - b\n"), 1);  // only the second test holds
  EXPECT_EQ(verdict("import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n"), 0);
  EXPECT_LE(verdict("import os\nos._exit(0)\n"), 0);
  EXPECT_EQ(verdict("import builtins\nclass E(Exception):\n    pass\nbuiltins.AssertionError = E\n"
                    "builtins.Exception = E\ndef add(a, b):\n    return 0\n"), 0);
  EXPECT_EQ(verdict("class Yes:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return Yes()\n"), 0);
  EXPECT_LE(verdict("import os\nos.write(1, b'GRPO-VERDICT x 2 2 11\\n')\nprint('GRPO-VERDICT x 2 2 11')\n"
                    "def add(a, b):\n    os.write(1, b'GRPO-VERDICT x 2 2 11\\n')\n    os._exit(0)\n"), 0);
  EXPECT_LE(verdict("import os\ndef add(a, b):\n    os.kill(os.getppid(), 9)\n"), 0);
  // A builtin the tests use cannot be shadowed from the program.
  const std::vector<std::string> uses_len = {"assert len(add([1], [2])) == 2"};
  EXPECT_EQ(verdict("def add(a, b):\n    return a + b\n", uses_len), 1);
  EXPECT_EQ(verdict("def add(a, b):\n    return 0\ndef len(x):\n    return 2\n", uses_len), 0);
}

TEST(SandboxAdversarial, NothingIsLeftBehindAfterTheSuite) {
  // Runs last (gtest keeps declaration order; under ctest each test is its own process, so this
  // also runs a few programs itself): no process of this test process's runs and no temp file
  // of it survive.
  auto r = run_py("import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(30)\nprint('bye')\n");
  EXPECT_STATUS(r, SandboxStatus::OK);
  EXPECT_TRUE(pids_with_marker(run_marker()).empty());
  for (auto& e : fs::directory_iterator(fs::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().rfind(planted_prefix(), 0), std::string::npos) << e.path();
}

}  // namespace
}  // namespace grpo::test
