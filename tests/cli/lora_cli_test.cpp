// LoRA GRPO end to end through the CLI, on the tiny Llama of tests/model/data/lora (a Hugging
// Face directory; scripts/make_lora_refs.py): checkpoints hold the adapters only and resume bit for
// bit; final/ is a PEFT adapter directory that peft.PeftModel.from_pretrained loads (venv python,
// an independent implementation), and `grpo model convert --merge` equals PEFT's
// merge_and_unload() of that adapter; a PEFT adapter continues training through lora.adapter_path.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/run_files.h"
#include "common/subprocess.h"

namespace {

namespace sfs = std::filesystem;
using grpo::testing::run_cmd;
using grpo::testing::run_grpo;

const std::string kBase = std::string(GRPO_SOURCE_DIR) + "/tests/model/data/lora/llama";

class LoraCli : public ::testing::Test {
 protected:
  static sfs::path d;
  static void SetUpTestSuite() {
    d = sfs::temp_directory_path() / ("grpo_lora_cli_" + std::to_string(::getpid()));
    sfs::remove_all(d);
    sfs::create_directories(d);
    std::ofstream data(d / "train.jsonl");
    for (int a = 1; a <= 16; ++a) data << "{\"prompt\": \"What is " << a << " plus 2?\", \"answer\": \"" << a + 2 << "\"}\n";
    data.close();
    auto tok = run_grpo("tokenizer train --input " + (d / "train.jsonl").string() +
                        " --vocab-size 48 --no-byte-fallback --out " + (d / "tok").string());
    ASSERT_EQ(tok.rc, 0) << tok.err;
    // init_lora_weights false (B != 0) and beta > 0: the KL term moves the adapters even when every
    // reward is equal, so a step always changes them.
    std::ofstream(d / "run.yaml") << "model: {path: " << kBase << "}\n"
                                  << "data: {train_file: " << (d / "train.jsonl").string() << ", max_prompt_length: 48}\n"
                                  << "tokenizer: {path: " << (d / "tok.model").string() << ", chat_template: plain}\n"
                                  << "lora: {r: 4, lora_alpha: 8, target_modules: [all-linear], init_lora_weights: false}\n"
                                  << "rollout: {max_completion_length: 8}\n"
                                  << "reward: {functions: [{name: math_answer, weight: 1.0}]}\n"
                                  << "grpo: {num_generations: 4, beta: 0.04}\n"
                                  << "optimizer: {learning_rate: 0.01}\n"
                                  << "checkpoint: {save_steps: 1, save_total_limit: 5}\n"
                                  << "trainer: {per_device_train_batch_size: 8, max_steps: 2, num_threads: 1}\n";
  }
  static void TearDownTestSuite() { sfs::remove_all(d); }
  static grpo::testing::CmdResult train(const sfs::path& out, const std::string& extra = "") {
    return run_grpo("train " + (d / "run.yaml").string() + " trainer.output_dir=" + out.string() + extra);
  }
  // Exit status of a python snippet run by the venv interpreter with argv[1:] = args.
  static grpo::testing::CmdResult py(const std::string& code, const std::string& args) {
    std::ofstream(d / "check.py") << code;
    return run_cmd(std::string(GRPO_PYTHON) + " " + (d / "check.py").string() + " " + args);
  }
};
sfs::path LoraCli::d;

const char* kSameTensors = R"(import sys, numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
bad = [k for k in a if k not in b or not np.array_equal(a[k], b[k])]
print(len(a), "tensors; differ:", bad)
sys.exit(1 if bad or len(a) != len(b) or not a else 0)
)";

TEST_F(LoraCli, CheckpointsHoldAdaptersAndResumeBitExact) {
  const auto full = d / "full", cut = d / "cut";
  auto r = train(full);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("lora: r=4"), std::string::npos) << r.err;
  const auto ck1 = full / "checkpoints" / "checkpoint-00000001";
  auto keys = py("import sys\nfrom safetensors import safe_open\nf = safe_open(sys.argv[1], 'np')\n"
                 "ks = list(f.keys()); print(len(ks)); sys.exit(0 if ks and all('.lora.' in k for k in ks) else 1)\n",
                 (ck1 / "model.safetensors").string());
  EXPECT_EQ(keys.rc, 0) << keys.out << keys.err;  // adapters only: 2 layers x 7 linears x (A, B)
  EXPECT_NE(keys.out.find("28"), std::string::npos) << keys.out;

  sfs::create_directories(cut / "checkpoints");
  sfs::copy(ck1, cut / "checkpoints" / "checkpoint-00000001", sfs::copy_options::recursive);
  std::ofstream(cut / "checkpoints" / "latest") << "checkpoint-00000001\n";
  auto res = train(cut, " --resume auto");
  ASSERT_EQ(res.rc, 0) << res.err;
  EXPECT_NE(res.err.find("resumed from"), std::string::npos) << res.err;
  auto same = py(kSameTensors, (full / "checkpoints" / "checkpoint-00000002" / "model.safetensors").string() + " " +
                                   (cut / "checkpoints" / "checkpoint-00000002" / "model.safetensors").string());
  EXPECT_EQ(same.rc, 0) << same.out << same.err;
  // The adapters moved: step 2 differs from step 1 (else the equality above proves nothing).
  auto moved = py(kSameTensors, (ck1 / "model.safetensors").string() + " " +
                                    (full / "checkpoints" / "checkpoint-00000002" / "model.safetensors").string());
  EXPECT_NE(moved.rc, 0) << moved.out;
}

// grpo.beta > 0 with LoRA: the reference log-probs are the policy's with its adapters off. At the
// first step (before any update) the logged KL is then exactly 0 when the adapters start at B = 0
// (PEFT's default init: policy == base), and clearly positive when they start non-zero
// (init_lora_weights false); a reference that kept the adapters on would give 0 in both cases.
TEST_F(LoraCli, ReferenceIsTheBaseWithAdaptersOff) {
  double kl[2];
  for (int nonzero = 0; nonzero < 2; ++nonzero) {
    const auto out = d / (nonzero ? "kl_nonzero" : "kl_zero");
    auto r = train(out, std::string(" trainer.max_steps=1 lora.init_lora_weights=") + (nonzero ? "false" : "true"));
    ASSERT_EQ(r.rc, 0) << r.err;
    auto metrics = grpo::testing::read_jsonl(out / "metrics.jsonl");
    ASSERT_EQ(metrics.size(), 1u);
    ASSERT_TRUE(metrics[0].contains("kl")) << metrics[0].dump();
    kl[nonzero] = metrics[0].at("kl").get<double>();
  }
  EXPECT_EQ(kl[0], 0.0);
  EXPECT_GT(kl[1], 1e-6);
}

TEST_F(LoraCli, FinalIsAPeftAdapterAndMergeEqualsPeft) {
  const auto run = d / "peft";
  auto r = train(run, " trainer.max_steps=1");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto fin = run / "final";
  ASSERT_TRUE(sfs::exists(fin / "adapter_config.json"));
  ASSERT_TRUE(sfs::exists(fin / "adapter_model.safetensors"));
  auto conv = run_grpo("model convert " + fin.string() + " " + (d / "merged").string() + " --merge");
  ASSERT_EQ(conv.rc, 0) << conv.err;
  EXPECT_NE(run_grpo("model convert " + fin.string() + " " + (d / "unmerged").string()).rc, 0);  // LoRA needs --merge
  // The PEFT adapter continues training from lora.adapter_path (a run on the same base).
  auto cont = train(d / "cont", " trainer.max_steps=1 lora.adapter_path=" + fin.string());
  ASSERT_EQ(cont.rc, 0) << cont.err;
  EXPECT_NE(cont.err.find("loaded the PEFT adapter"), std::string::npos) << cont.err;

  // peft is pinned in scripts/requirements.txt: its absence is a broken set-up, not a reason to skip.
  ASSERT_EQ(run_cmd(std::string(GRPO_PYTHON) + " -c 'import peft'").rc, 0) << "no peft in " << GRPO_PYTHON << ": run scripts/setup.sh";
  // PEFT loads final/ onto the transformers base; its logits equal those of our merged export (run
  // by transformers), and its merge_and_unload() equals our merged tensors.
  auto check = py(R"(import sys, torch, transformers
from peft import PeftModel
from safetensors.torch import load_file
base, fin, merged = sys.argv[1:4]
m = transformers.AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
pm = PeftModel.from_pretrained(m, fin).eval()
ids = torch.tensor([[3, 9, 27, 5, 40, 11]])
with torch.no_grad():
    a = pm(input_ids=ids).logits
    b = transformers.AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32)(input_ids=ids).logits
    with pm.disable_adapter():
        c = pm(input_ids=ids).logits
rel = ((a - b).abs().max() / a.abs().max()).item()
moved = ((a - c).abs().max() / a.abs().max()).item()
ours = load_file(merged + "/model.safetensors")
theirs = pm.merge_and_unload().state_dict()
werr = max(((ours[k] - theirs[k]).abs().max() / theirs[k].abs().max().clamp_min(1e-30)).item() for k in ours)
print("logits rel", rel, "adapter effect", moved, "merged weights rel", werr, len(ours))
sys.exit(0 if rel < 1e-5 and moved > 1e-4 and werr < 1e-6 else 1)
)",
                  kBase + " " + fin.string() + " " + (d / "merged").string());
  EXPECT_EQ(check.rc, 0) << check.out << check.err;
}

TEST_F(LoraCli, DataParallelReducesAdaptersOnlyAndConfigErrorsNameTheKey) {
  // Two local ranks: the gradient reducer takes the parameters that require grad, the 28 adapters.
  auto dp = run_grpo("launch --nproc 2 -- train " + (d / "run.yaml").string() + " trainer.output_dir=" + (d / "dp").string() +
                     " trainer.per_device_train_batch_size=4 trainer.max_steps=1");
  ASSERT_EQ(dp.rc, 0) << dp.err << dp.out;
  const std::string log = dp.out + dp.err;
  EXPECT_NE(log.find("gradient all-reduce: 1 bucket(s) for 28 parameter tensors"), std::string::npos) << log;
  EXPECT_TRUE(sfs::exists(d / "dp" / "final" / "adapter_model.safetensors"));

  auto bad = train(d / "bad", " 'lora.target_modules=[lm_head]'");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("lora.target_modules: unknown module 'lm_head'"), std::string::npos) << bad.err;
  auto sync = train(d / "bad", " grpo.ref_model_sync_steps=4");
  EXPECT_NE(sync.rc, 0);
  EXPECT_NE(sync.err.find("grpo.ref_model_sync_steps > 0 with lora.r > 0"), std::string::npos) << sync.err;
}

}  // namespace
