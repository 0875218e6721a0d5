#pragma once
// File helpers whose point is durability: a crash mid-write never leaves a half-written file under
// the final name (write to a temp file in the same directory, fsync, rename, fsync the directory).
#include <string>

namespace grpo::fs {

/// Writes `data` to `path` atomically. Throws grpo::InputError naming the path on failure.
void atomic_write(const std::string& path, const std::string& data);

/// fsync()s a directory so a rename inside it is durable. Throws grpo::InputError on failure.
void fsync_dir(const std::string& dir);

/// Reads a whole file. Throws grpo::InputError naming the path when it is missing, a directory
/// or unreadable.
std::string read_file(const std::string& path);

}  // namespace grpo::fs
