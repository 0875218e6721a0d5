#pragma once
// Errors thrown across the library boundary. Library code never calls exit(); the CLI turns any
// grpo::Error into one line on stderr and an exit code (see src/main.cpp).
#include <sstream>
#include <stdexcept>
#include <string>

namespace grpo {

/// Concatenates any streamable values into a string: str("got ", 3, " tokens").
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

/// Base of every error the library throws on purpose. what() is one line meant for the user.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Bad user input: a file, a value, a record. The CLI exits with code 2 for these.
class InputError : public Error {
 public:
  using Error::Error;
};

/// An internal invariant failed: a bug in grpo, not in the input.
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace grpo

/// Throws grpo::InternalError naming the file, line and the failed condition, plus a message.
#define GRPO_CHECK(cond, ...)                                                                  \
  do {                                                                                         \
    if (!(cond))                                                                               \
      throw ::grpo::InternalError(::grpo::str(__FILE__, ":", __LINE__, ": check failed: " #cond \
                                              " ", ##__VA_ARGS__));                           \
  } while (0)

/// Throws grpo::InputError with the message when cond is false (for checks on user input).
#define GRPO_REQUIRE(cond, ...)                                          \
  do {                                                                   \
    if (!(cond)) throw ::grpo::InputError(::grpo::str(__VA_ARGS__));     \
  } while (0)
