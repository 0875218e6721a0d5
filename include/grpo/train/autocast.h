#pragma once
// trainer.bf16 for the training forwards: the model layer's bf16 autocast scope (CUDA and CPU),
// grpo/model/bf16_autocast.h, under the name the train layer has always used.
#include "grpo/model/bf16_autocast.h"

namespace grpo::train {

using model::Bf16Autocast;

}  // namespace grpo::train
