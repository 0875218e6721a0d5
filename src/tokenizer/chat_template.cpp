#include "grpo/tokenizer/chat_template.h"

#include "grpo/util/error.h"
#include "grpo/util/strings.h"

namespace grpo::tok {
namespace {

void check_roles(const std::vector<ChatMessage>& msgs) {
  GRPO_REQUIRE(!msgs.empty(), "chat template: the conversation has no messages");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& r = msgs[i].role;
    GRPO_REQUIRE(r == "system" || r == "user" || r == "assistant", "chat template: message ", i, " has unknown role '",
                 r, "' (expected system, user or assistant)");
  }
}

std::string unescape_jinja(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string default_system_from_template(const std::string& src) {
  size_t cond = src.find("messages[0]['role'] != 'system'");
  if (cond == std::string::npos) cond = src.find("messages[0][\"role\"] != \"system\"");
  if (cond == std::string::npos) return "";
  size_t start = src.find("<|im_start|>system", cond);
  if (start == std::string::npos) return "";
  start += std::string("<|im_start|>system").size();
  size_t end = src.find("<|im_end|>", start);
  // Only a literal in the same {{ ... }} expression, not one built from a variable.
  size_t close = src.find("}}", start);
  if (end == std::string::npos || (close != std::string::npos && close < end)) return "";
  std::string body = unescape_jinja(src.substr(start, end - start));
  if (!body.empty() && body[0] == '\n') body.erase(0, 1);
  return body;
}

ChatFormatter::ChatFormatter(config::ChatTemplate kind, const Tokenizer& tok, std::string assistant_prefix)
    : kind_(kind), prefix_(std::move(assistant_prefix)), bos_("<s>"), eos_("</s>") {
  const std::string& src = tok.chat_template_source();
  if (kind_ == config::ChatTemplate::AUTO) {
    if (tok.find_token("<|im_start|>")) kind_ = config::ChatTemplate::CHATML;
    else if (src.find("[INST]") != std::string::npos) kind_ = config::ChatTemplate::LLAMA2;
    else kind_ = config::ChatTemplate::PLAIN;
  }
  if (kind_ == config::ChatTemplate::CHATML) default_system_ = default_system_from_template(src);
  if (tok.special().bos) bos_ = tok.piece(*tok.special().bos);
  if (!tok.special().eos.empty()) eos_ = tok.piece(tok.special().eos.front());
}

ChatFormatter::ChatFormatter(config::ChatTemplate kind, std::string assistant_prefix, std::string template_source,
                             std::string bos, std::string eos)
    : kind_(kind), prefix_(std::move(assistant_prefix)), bos_(std::move(bos)), eos_(std::move(eos)) {
  GRPO_REQUIRE(kind_ != config::ChatTemplate::AUTO, "chat template: 'auto' needs a tokenizer to choose from");
  if (kind_ == config::ChatTemplate::CHATML) default_system_ = default_system_from_template(template_source);
}

std::string ChatFormatter::render(const std::vector<ChatMessage>& msgs, bool gen) const {
  check_roles(msgs);
  std::string out;
  switch (kind_) {
    case config::ChatTemplate::AUTO:
    case config::ChatTemplate::CHATML:
      if (!default_system_.empty() && msgs[0].role != "system")
        out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
      for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (gen) out += "<|im_start|>assistant\n" + prefix_;
      return out;
    case config::ChatTemplate::LLAMA2: {
      size_t i = 0;
      std::string system;
      if (msgs[0].role == "system") system = std::string(trim(msgs[0].content)), i = 1;
      bool expect_user = true;
      for (size_t k = i; k < msgs.size(); ++k) {
        const auto& m = msgs[k];
        GRPO_REQUIRE(m.role != "system", "chat template llama2: message ", k, " is a system message; only the first may be");
        GRPO_REQUIRE((m.role == "user") == expect_user, "chat template llama2: message ", k, " is '", m.role,
                     "' but turns must alternate user/assistant starting with user");
        std::string c(trim(m.content));
        if (m.role == "user") {
          if (k == i && !system.empty()) c = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + c;
          out += bos_ + "[INST] " + c + " [/INST]";
        } else {
          out += " " + c + " " + eos_;
        }
        expect_user = !expect_user;
      }
      if (gen && !prefix_.empty() && !expect_user) out += " " + prefix_;
      return out;
    }
    case config::ChatTemplate::PLAIN:
      for (const auto& m : msgs) {
        std::string role = m.role;
        role[0] = static_cast<char>(role[0] - 'a' + 'A');
        out += role + ": " + m.content + "\n";
      }
      if (gen) out += prefix_.empty() ? "Assistant:" : "Assistant: " + prefix_;
      return out;
  }
  return out;
}

}  // namespace grpo::tok
