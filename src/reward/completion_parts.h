#pragma once
// Splitting an R1-style completion "<think>reasoning</think> <answer>final</answer>" into its
// parts. Plain substring search (linear time), no regular expressions.
#include <optional>
#include <string>
#include <string_view>

#include "grpo/reward/reward_function.h"

namespace grpo::reward {

/// The part of `completion` in which a final answer may be looked for:
///  - after the last "</think>" when the completion closes a think block;
///  - "" when "<think>" is opened and never closed (the model is still thinking: no answer);
///  - the whole completion when it has no think tags.
/// So an answer written only inside the reasoning never counts.
std::string_view answer_region(std::string_view completion, std::string_view think_tag = "think");

/// The chain of thought: the content of the first <think>...</think> block; the text before
/// "</think>" when only the closing tag is present (the prompt opened the block); the text after
/// an unclosed "<think>"; the whole completion when there are no think tags.
std::string_view chain_of_thought(std::string_view completion, std::string_view think_tag = "think");

/// The content of the last complete <tag>...</tag> pair in `text`, or nullopt when there is none.
/// `start` (if given) receives the offset of that "<tag>" in `text`.
std::optional<std::string_view> last_tag_content(std::string_view text, std::string_view tag,
                                                 size_t* start = nullptr);

/// `text` without its tool-output spans: each `open` up to and including the next `close` is
/// removed (to the end of the text when the span is never closed: an output cut by the length
/// limit). `open` empty: `text` unchanged. Linear in the text.
std::string strip_tool_output(std::string_view text, std::string_view open, std::string_view close);

/// What the policy itself wrote in row.completion: strip_tool_output() with the row's tool output
/// markers. Returns row.completion (no copy) when the row has none, else a view of `storage`.
std::string_view policy_text(const RewardInput& row, std::string& storage);

}  // namespace grpo::reward
