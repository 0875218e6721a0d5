#pragma once
// GGUF import for llama.cpp's "llama" architecture (Llama, Mistral, SmolLM, ... as written by
// convert_hf_to_gguf.py). Weights are dequantised to float32 (F32/F16/BF16/Q8_0/Q4_0/Q4_1, via
// grpo::gguf) and mapped through gguf_tensor_name() (arch_table.h). convert_hf_to_gguf.py permutes
// the rows of attn_q/attn_k from HF's rotate_half layout to GGML's interleaved RoPE layout
// (LlamaModel.permute); load_gguf applies the inverse so the model runs our (HF) RoPE.
#include <string>

#include "grpo/model/transformer.h"
#include "grpo/util/gguf.h"

namespace grpo::model {

/// The spec from GGUF metadata (llama.* keys; vocab from the token embedding). Throws
/// grpo::InputError naming the file and key for a missing key or an architecture other than llama.
ModelSpec spec_from_gguf(const gguf::File& file);

/// Loads a model from a .gguf file. Throws grpo::InputError naming the file and tensor for a tensor
/// type we cannot dequantise (e.g. Q5_0, Q4_K), a missing tensor or a shape mismatch.
Transformer load_gguf(const std::string& path);

/// Undoes convert_hf_to_gguf's q/k row permutation: w [n_head * head_dim, in] ->
/// view(n_head, head_dim/2, 2, in).transpose(1, 2).reshape(w.shape).
torch::Tensor unpermute_qk(const torch::Tensor& w, int64_t n_head);

}  // namespace grpo::model
