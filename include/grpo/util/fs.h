#pragma once
// File helpers whose point is durability: a crash mid-write never leaves a half-written file under
// the final name (write to a temp file in the same directory, fsync, rename, fsync the directory).
#include <string>

namespace grpo::fs {

/// Writes `data` to `path` atomically (temp file, fsync, rename). A symlink to a regular file keeps
/// its link (the file it points to is replaced); an existing non-regular file (a device, a FIFO)
/// and anything under /dev/ or /proc/ (/dev/stdout) is written through (appended), not atomically. Throws grpo::InputError naming the path on failure.
void atomic_write(const std::string& path, const std::string& data);

/// fsync()s a directory so a rename inside it is durable. Throws grpo::InputError on failure.
void fsync_dir(const std::string& dir);

/// The set-up-time data directory, resolved as scripts/lib/env.sh does: $GRPO_DATA_DIR, else
/// $GRPO_CACHE_DIR/data, else $XDG_CACHE_HOME/grpo/data, else $HOME/.cache/grpo/data.
std::string data_dir();

/// Expands a leading "~/" (to $HOME/) or "$GRPO_DATA_DIR/" / "${GRPO_DATA_DIR}/" (to data_dir()/)
/// in a path from a config; any other path is returned unchanged.
std::string expand_path(const std::string& path);

/// Reads a whole file. Throws grpo::InputError naming the path when it is missing, a directory
/// or unreadable.
std::string read_file(const std::string& path);

}  // namespace grpo::fs
