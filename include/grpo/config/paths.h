#pragma once
// The files a config names, checked against the disk (`grpo config check`). Apart from the
// value checks of validate(): a config can be valid and written before its files exist (a shipped
// config naming a model that set-up downloads later), so only the commands about to use the files
// check them.
#include "grpo/config/config.h"

namespace grpo::config {

/// Throws ConfigError (BAD_VALUE, at the key's file:line) naming the first of model.path,
/// tokenizer.path, data.train_file, data.eval_file that is set but does not exist:
/// "model.path: /x/y.gguf: no such file or directory". Files the run makes itself are exempt: the
/// data files and the sentencepiece tokenizer of a built-in task (task.name, task.tokenizer_vocab_size).
/// Relative paths are taken from the current directory, as the trainer takes them.
void check_paths_exist(const Config& cfg, const Provenance& prov);

}  // namespace grpo::config
