// Node-API addon: oneDNN primitives computing in place on tfjs wasm tensors.
//
// tfjs's wasm backend keeps every tensor in the module's linear memory (HEAPU8). Each entry
// point here takes that Uint8Array, byte offsets of the operands inside it and an Int32Array
// of shape parameters, and runs one oneDNN primitive over that memory. NHWC activations and
// tfjs's [kH, kW, in, out] filters are described to oneDNN by strides, so no copy is needed;
// where oneDNN prefers a blocked layout (format_tag::any), the operands are reordered into
// buffers owned by the cached primitive and the result reordered back.
//
// Primitives are cached by their parameters: a training step asks for the same few shapes
// every batch, and creating a primitive (JIT code generation) costs far more than running it.

#include <node_api.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define UTKFACE_HAVE_MXCSR 1
#endif

#include "layouts.h"

// Element-wise loops are compiled for AVX-512 and AVX2 beside the x86-64 baseline (SSE2, 4 floats
// wide), and the loader picks one for the CPU (GCC's target_clones). Vector division and square
// root are exact in every width and -ffp-contract=off keeps FMA out, so every clone gives the
// same bits. (-fno-math-errno lets std::sqrt vectorise: Adam's loop was scalar without it.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UTKFACE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define UTKFACE_CLONES
#endif

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& cpu_engine() {
  static engine e(engine::kind::cpu, 0);
  return e;
}

stream& cpu_stream() {
  static stream s(cpu_engine());
  return s;
}

// Layout of convolution operands: 0 blocked (format_tag::any for activations and weights),
// 1 plain (NHWC activations, tfjs's weights as they lie), 2 mixed: activations NHWC as tfjs
// holds them and weights any: no activation reorder around any call, only the small weight
// reorders. 3 auto (the default): mixed, except for the convolutions where the CPU's NHWC kernel
// is slow enough that reordering the activations in and out pays (see blocked_pays).
int g_layout = 3;
bool g_blocked = false;  // activations in blocked layouts (g_layout == 0)

// Arithmetic of convolutions and matrix products: 0 float32 (the default, bit-reproducible),
// 1 bfloat16 (UTKFACE_MATH=bf16): the operands are rounded to bfloat16 on their way in and the
// products accumulate in float32 into a float32 result, as PyTorch's CPU autocast does. On a CPU
// with AMX or AVX512_BF16 oneDNN then runs bf16 kernels (a 64->64 3x3 convolution at 70x70:
// 10x the float32 rate on one Sapphire Rapids core). A primitive that has no bf16 kernel here
// (a reference implementation only) stays in float32.
int g_math = 0;

// One operand of a cached primitive: how tfjs holds it (user) and how the primitive wants it.
struct Slot {
  int arg = 0;
  memory::desc user;
  bool reordered = false;
  reorder to_prim;    // user -> buffer (inputs)
  reorder from_prim;  // buffer -> user (the output)
  memory buffer;      // the primitive's layout, owned here
  // Weights: which tfjs tensor (an id the caller gives each tensor's data, never reused) and
  // where it lay when `buffer` was last filled from it. tfjs tensors are immutable, so the
  // same id means the same values: inference reorders a layer's weights once, not per batch.
  double last_id = 0;
  const void* last_ptr = nullptr;
};

// Weight buffers by tensor id: a backward-data call finds the forward call's reordered filter
// (same tensor, same step) when both primitives want the same layout. Entries are checked
// against the slot's current contents before use, and dropped wholesale when the map grows.
std::unordered_map<double, Slot*> g_weights;

struct Entry {
  primitive prim;
  std::vector<Slot> ins;
  Slot out;
  // Forward inference: the filter's reordered copy is kept per tensor (kept_weights), not in
  // the slot, because layers of one shape share this primitive.
  bool keeps_weights = false;
};

// Reordered filters of inference calls, by tensor id. Layers of one shape share a cached
// primitive (VGG19's four 512->512 convolutions at 4x4, three at 8x8, three 256->256), so a
// filter held in the primitive's slot was overwritten by the next such layer, and every batch
// reordered seven of VGG19's filters again (5 ms each for 512x512x3x3 on one core). Each tensor
// keeps its copy here instead, oldest dropped first beyond kKeptBytes (a training run's
// validation passes leave the copies of filters that no longer exist).
struct KeptCopy {
  const void* ptr;  // where the tensor lay
  int kind;         // 0 a reordered filter; 1, 2 the Winograd path's transforms (forward, backward data)
  memory copy;
};
struct KeptWeights {
  std::vector<KeptCopy> copies;
  size_t bytes = 0;
};
std::unordered_map<double, KeptWeights> g_kept;
std::deque<double> g_kept_order;  // tensor ids, oldest first
size_t g_kept_bytes = 0;
constexpr size_t kKeptBytes = size_t(512) << 20;

// The copy of tensor `id` (lying at `ptr`) of one kind in layout `want`, made by `fill` the first time.
memory kept_copy(double id, const void* ptr, int kind, const memory::desc& want, const std::function<void(memory&)>& fill) {
  auto it = g_kept.find(id);
  if (it != g_kept.end())
    for (auto& c : it->second.copies)
      if (c.ptr == ptr && c.kind == kind && c.copy.get_desc() == want) return c.copy;
  const size_t bytes = want.get_size();
  while (!g_kept_order.empty() && g_kept_bytes + bytes > kKeptBytes) {
    auto old = g_kept.find(g_kept_order.front());
    g_kept_bytes -= old->second.bytes;
    g_kept.erase(old);
    g_kept_order.pop_front();
  }
  memory buffer(want, cpu_engine());
  fill(buffer);
  auto& kept = g_kept[id];
  if (kept.copies.empty()) g_kept_order.push_back(id);
  kept.copies.push_back({ptr, kind, buffer});
  kept.bytes += bytes;
  g_kept_bytes += bytes;
  return buffer;
}

memory kept_weights(double id, const void* ptr, Slot& slot, memory& user, stream& s) {
  return kept_copy(id, ptr, 0, slot.buffer.get_desc(), [&](memory& buffer) { slot.to_prim.execute(s, user, buffer); });
}

std::unordered_map<std::string, std::unique_ptr<Entry>> g_cache;

// A primitive's operand: the user's memory as it is or, where the primitive wants another
// layout, a buffer of its own and the reorder into it (an input) or out of it (the output).
Slot make_slot(int arg, const memory::desc& user, const memory::desc& prim, bool output) {
  Slot s;
  s.arg = arg;
  s.user = user;
  if (prim != user) {
    s.reordered = true;
    s.buffer = memory(prim, cpu_engine());
    if (output)
      s.from_prim = reorder(reorder::primitive_desc(cpu_engine(), prim, cpu_engine(), user));
    else
      s.to_prim = reorder(reorder::primitive_desc(cpu_engine(), user, cpu_engine(), prim));
  }
  return s;
}

Slot input_slot(int arg, const memory::desc& user, const memory::desc& prim) { return make_slot(arg, user, prim, false); }
Slot output_slot(int arg, const memory::desc& user, const memory::desc& prim) { return make_slot(arg, user, prim, true); }

// A backward convolution (data or weights): its primitive, its inputs and its output, each slot
// in the layout the primitive asks for its argument.
template <class Op>
std::string backward_conv(Entry& e, const typename Op::desc& d, const convolution_forward::primitive_desc& hint,
                   std::initializer_list<std::pair<int, const memory::desc*>> ins, int out_arg, const memory::desc& out_user) {
  typename Op::primitive_desc pd(d, cpu_engine(), hint);
  e.prim = Op(pd);
  for (const auto& in : ins) e.ins.push_back(input_slot(in.first, *in.second, pd.query_md(query::exec_arg_md, in.first)));
  e.out = output_slot(out_arg, out_user, pd.query_md(query::exec_arg_md, out_arg));
  return pd.impl_info_str();
}

// Denormal floats (below 1.2e-38) take a slow microcode path on x86: 50x slower for Adam's
// update, 25x for a multiply. A network on a plateau makes them: tiny gradients, whose squares
// in Adam's second moment are denormal. The report CNN's first epochs ran at half speed, and
// the sigmoid age model's last six of 18 quick epochs too. So while any kernel of this addon
// runs (oneDNN's primitives and the loops below), every thread of the pool flushes them to
// zero (MXCSR's FTZ and DAZ bits), as TensorFlow's own CPU kernels do; the calling thread's
// previous mode is put back afterwards, so V8's JavaScript and wasm (which must keep IEEE
// denormals) never see the change. Results differ from tfjs's wasm kernels only where a value
// is below 1.2e-38. UTKFACE_DENORMALS=keep turns it off (then the addon's loops match wasm to the bit
// everywhere).
#ifdef UTKFACE_HAVE_MXCSR
constexpr unsigned kFlushBits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
bool flush_denormals() {
  static const bool on = [] {
    const char* v = std::getenv("UTKFACE_DENORMALS");
    return !(v && std::string(v) == "keep");
  }();
  return on;
}
struct FlushDenormals {
  const bool on = flush_denormals();
  unsigned before = 0;
  // The calling thread (V8's, thread 0 of every OpenMP team) flushes for the scope and gets its
  // own mode back; OpenMP's worker threads run nothing but this addon and oneDNN, so they are set
  // to flush once and stay so (a parallel region on every call cost more than Adam's update).
  FlushDenormals() {
    if (!on) return;
    flush_workers();
    before = _mm_getcsr();
    _mm_setcsr(before | kFlushBits);
  }
  ~FlushDenormals() {
    if (on) _mm_setcsr((_mm_getcsr() & ~kFlushBits) | (before & kFlushBits));
  }
  // Sets every worker of the pool once per pool size (setThreads can grow it).
  static void flush_workers() {
    static int flushed_for = 0;
    const int n = omp_get_max_threads();
    if (n == flushed_for) return;
#pragma omp parallel
    if (omp_get_thread_num() != 0) _mm_setcsr(_mm_getcsr() | kFlushBits);
    flushed_for = n;
  }
};
#else
struct FlushDenormals {};
#endif

// oneDNN 2.6's generated GEMM kernels (gemm:jit: every float32 matmul on an AVX2 CPU, and the
// gemm-based convolutions) point rsp at a heap buffer while they run, so a signal handled on that
// thread meanwhile writes its frame into the heap (oneDNN issue 4845, fixed in 3.11.2): glibc then
// aborts at a later free ("corrupted size vs. prev_size"). node --cpu-prof's 1 ms SIGPROF did so
// within two seconds of training; a SIGCHLD or SIGINT could as well. So asynchronous signals are
// held on the calling thread while a primitive runs (delivered when it returns, none lost), and
// OpenMP's workers, which run nothing but this addon's kernels, block them for good. Synchronous
// ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) are never blocked.
sigset_t async_signals() {
  sigset_t set;
  sigfillset(&set);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigdelset(&set, sig);
  return set;
}

struct HoldSignals {
  sigset_t before;
  HoldSignals() {
    static const sigset_t set = async_signals();
    block_workers(set);
    pthread_sigmask(SIG_BLOCK, &set, &before);
  }
  ~HoldSignals() { pthread_sigmask(SIG_SETMASK, &before, nullptr); }
  // Every worker of the pool, once per pool size (setThreads can grow it).
  static void block_workers(const sigset_t& set) {
    static int blocked_for = 0;
    const int n = omp_get_max_threads();
    if (n == blocked_for) return;
#pragma omp parallel
    if (omp_get_thread_num() != 0) pthread_sigmask(SIG_BLOCK, &set, nullptr);
    blocked_for = n;
  }
};

// Runs a cached primitive on operands at `in_ptrs` (in the order of e.ins) writing `out_ptr`.
// `weight_id` (> 0) names the tensor of the DNNL_ARG_WEIGHTS input, whose reorder is then
// skipped when its buffer (or another primitive's, in the same layout) already holds it.
// Denormals are flushed while it runs (see FlushDenormals).
void run(Entry& e, const std::vector<void*>& in_ptrs, void* out_ptr, double weight_id = 0) {
  HoldSignals hold;
  FlushDenormals flush;
  stream& s = cpu_stream();
  std::unordered_map<int, memory> args;
  for (size_t i = 0; i < e.ins.size(); i++) {
    Slot& slot = e.ins[i];
    memory user(slot.user, cpu_engine(), in_ptrs[i]);
    if (slot.reordered && weight_id > 0 && slot.arg == DNNL_ARG_WEIGHTS && e.keeps_weights) {
      args[slot.arg] = kept_weights(weight_id, in_ptrs[i], slot, user, s);
      continue;
    }
    if (slot.reordered && weight_id > 0 && slot.arg == DNNL_ARG_WEIGHTS) {
      if (slot.last_id == weight_id && slot.last_ptr == in_ptrs[i]) {
        args[slot.arg] = slot.buffer;
        continue;
      }
      auto it = g_weights.find(weight_id);
      if (it != g_weights.end() && it->second != &slot && it->second->last_id == weight_id && it->second->last_ptr == in_ptrs[i] &&
          it->second->buffer.get_desc() == slot.buffer.get_desc()) {
        args[slot.arg] = it->second->buffer;
        continue;
      }
      slot.to_prim.execute(s, user, slot.buffer);
      slot.last_id = weight_id;
      slot.last_ptr = in_ptrs[i];
      if (g_weights.size() > 4096) g_weights.clear();
      g_weights[weight_id] = &slot;
      args[slot.arg] = slot.buffer;
      continue;
    }
    if (slot.reordered) {
      slot.to_prim.execute(s, user, slot.buffer);
      args[slot.arg] = slot.buffer;
    } else {
      args[slot.arg] = user;
    }
  }
  memory out_user(e.out.user, cpu_engine(), out_ptr);
  args[e.out.arg] = e.out.reordered ? e.out.buffer : out_user;
  e.prim.execute(s, args);
  if (e.out.reordered) e.out.from_prim.execute(s, e.out.buffer, out_user);
  s.wait();
}

memory::desc any_or(const memory::dims& dims, const memory::desc& user, bool blocked = g_layout == 0) {
  return blocked ? memory::desc(dims, dt::f32, tag::any) : user;
}

// Whether oneDNN reads and writes NHWC activations at full speed on this CPU: its AVX-512
// brgemm convolutions (brgconv:avx512_core*) do; on an AVX2-only CPU the NHWC path of
// jit:avx2 is 1.2-1.9x slower than the same kernel on blocked (nChw8c) activations (VGG19's
// 64->64 3x3 convolution at 70x70, batch 25, one Zen 3 core: 194 ms NHWC, 117 ms blocked).
// Probed once on a 64->64 3x3 convolution.
bool nhwc_native() {
  static const bool native = [] {
    memory::desc x({8, 64, 16, 16}, dt::f32, tag::nhwc), w({64, 64, 3, 3}, dt::f32, tag::any);
    convolution_forward::primitive_desc pd(convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, x, w, x, {1, 1}, {0, 0}, {1, 1}, {1, 1}), cpu_engine());
    return std::string(pd.impl_info_str()).rfind("brg", 0) == 0;
  }();
  return native;
}

// In the auto layout, a convolution whose activations go blocked, on a CPU without native NHWC
// kernels: a dense (not grouped) convolution wider than 1x1 with at least 64 output channels,
// and then
// - forward inference: at least 32 input channels. Its blocked kernel is 1.2-1.6x faster and
//   the two activation reorders cost less than the difference (VGG19 at batch 25 on one Zen 3
//   core: 1,153 ms of convolutions a batch blocked, 1,634 NHWC, about 120 ms of reorders; the
//   report CNN's 32->64 at 35x35: 22.2 ms NHWC, 18.9 blocked plus 1.8 of reorders);
// - training (forward, backward data, backward weights): at least 64 input channels and 0.75
//   GMAC a call. VGG19's layers (0.94-5.8 GMAC at batch 25) gain 1.1-1.9x in every pass, but
//   the report CNN's (0.47-0.56 GMAC) lose in both gradients (backward weights of 64->128 at
//   17x17: 19.1 ms NHWC, 24.2 blocked).
// 1x1 and depthwise convolutions (MobileNet) stay NHWC: there the reorders cost more than they save.
bool blocked_pays(const int32_t* p) {
  if (g_layout == 0) return true;
  if (g_layout != 3 || p[P_G] != 1 || p[P_KH] * p[P_KW] == 1 || p[P_O] < 64 || nhwc_native()) return false;
  if (p[P_OP] == 1) return p[P_C] >= 32;
  const double macs = double(p[P_N]) * p[P_OH] * p[P_OW] * p[P_O] * p[P_C] * p[P_KH] * p[P_KW];
  return p[P_C] >= 64 && macs >= 0.75e9;
}

memory::desc weights_any_or(const memory::dims& dims, const memory::desc& user) {
  return g_layout != 1 ? memory::desc(dims, dt::f32, tag::any) : user;
}

#include "winograd.h"

// ---- Node-API plumbing -------------------------------------------------------------------

struct Args {
  napi_env env;
  std::vector<napi_value> v;
};

bool get_args(napi_env env, napi_callback_info info, size_t want, Args& a) {
  a.env = env;
  a.v.resize(want);
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, a.v.data(), nullptr, nullptr);
  if (argc < want) {
    napi_throw_error(env, nullptr, "utkface_onednn: too few arguments");
    return false;
  }
  return true;
}

// Base pointer and byte length of a typed array (the wasm heap view or a parameter array).
bool typed(napi_env env, napi_value v, uint8_t** data, size_t* bytes) {
  napi_typedarray_type type;
  size_t length;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok) {
    napi_throw_type_error(env, nullptr, "utkface_onednn: expected a typed array");
    return false;
  }
  size_t width = type == napi_int32_array || type == napi_float32_array || type == napi_uint32_array ? 4 : type == napi_float64_array ? 8 : 1;
  *data = static_cast<uint8_t*>(ptr);
  *bytes = length * width;
  return true;
}

double number(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

std::string key_of(const char* op, const int32_t* p, size_t n, double alpha) {
  std::string k(op);
  k.push_back("bpma"[g_layout]);
  k.push_back("fh"[g_math]);
  k += std::to_string(omp_get_max_threads());
  for (size_t i = 0; i < n; i++) {
    k.push_back(',');
    k += std::to_string(p[i]);
  }
  k.push_back('/');
  k += std::to_string(alpha);
  return k;
}

// Runs `body`, turning a oneDNN or C++ exception into a JS error.
template <typename F>
napi_value guarded(napi_env env, F body) {
  try {
    return body();
  } catch (const dnnl::error& e) {
    napi_throw_error(env, nullptr, (std::string("oneDNN: ") + e.what() + " (status " + std::to_string(e.status) + ")").c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("utkface_onednn: ") + e.what()).c_str());
  }
  return nullptr;
}

void set_post_op(primitive_attr& attr, int act, float alpha) {
  if (act == 0) return;
  post_ops po;
  switch (act) {
    case 1: po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); break;
    case 2: po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f); break;
    case 3: po.append_eltwise(1.f, algorithm::eltwise_elu, 1.f, 0.f); break;
    case 4: po.append_eltwise(1.f, algorithm::eltwise_relu, alpha, 0.f); break;
    case 5: po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); break;
    default: throw std::runtime_error("unknown activation code " + std::to_string(act));
  }
  attr.set_post_ops(po);
}

// A bf16 primitive that would run oneDNN's reference code (no bf16 kernel for this CPU or shape).
struct no_fast_kernel : std::exception {};
bool is_reference(const char* impl) { return std::string(impl).rfind("ref", 0) == 0; }

// ---- convolution ---------------------------------------------------------------------------
// p: op (0 forward training, 1 forward inference, 2 backward data, 3 backward weights),
//    N H W C O kH kW oH oW sH sW dH dW padTop padLeft padBottom padRight groups hasBias act
// offsets: forward (x, filter, bias, y); backward data (dy, filter, -, dx);
//          backward weights (x, dy, -, dfilter).

std::unique_ptr<Entry> make_conv_as(const int32_t* p, float alpha, dt math) {
  const memory::dim N = p[P_N], H = p[P_H], W = p[P_W], C = p[P_C], O = p[P_O], kH = p[P_KH], kW = p[P_KW], oH = p[P_OH], oW = p[P_OW], G = p[P_G];
  memory::desc src_user({N, C, H, W}, dt::f32, tag::nhwc);
  memory::desc dst_user({N, O, oH, oW}, dt::f32, tag::nhwc);
  memory::dims wdims;
  memory::desc wei_user;
  if (G == 1) {
    // tfjs filter [kH][kW][C][O] seen as oihw by strides.
    wdims = {O, C, kH, kW};
    wei_user = memory::desc(wdims, dt::f32, memory::dims{1, O, kW * C * O, C * O});
  } else {
    // Depthwise: tfjs [kH][kW][C][mult], groups = C, one input and `mult` outputs per group.
    const memory::dim M = O / G;
    wdims = {G, M, 1, kH, kW};
    wei_user = memory::desc(wdims, dt::f32, memory::dims{M, 1, G * M, kW * C * M, C * M});
  }
  memory::desc bias_user({O}, dt::f32, tag::a);
  memory::dims strides{p[P_SH], p[P_SW]}, dil{p[P_DH] - 1, p[P_DW] - 1}, pl{p[P_PT], p[P_PL]}, pr{p[P_PB], p[P_PR]};
  const bool blocked = blocked_pays(p);
  auto src_md = any_or({N, C, H, W}, src_user, blocked);
  auto dst_md = any_or({N, O, oH, oW}, dst_user, blocked);
  auto wei_md = weights_any_or(wdims, wei_user);
  const int op = p[P_OP];
  if (math == dt::bf16) {
    // bf16 operands (activations NHWC, weights in the kernel's layout), float32 results: the
    // forward's dst, backward data's diff_src and backward weights' diff_weights. The inputs
    // each call reads (x, filter, dy) are rounded by their slot's reorder.
    const memory::desc x16({N, C, H, W}, dt::bf16, blocked ? tag::any : tag::nhwc);
    const memory::desc y16({N, O, oH, oW}, dt::bf16, blocked ? tag::any : tag::nhwc);
    wei_md = memory::desc(wdims, dt::bf16, tag::any);
    if (op <= 1) {
      src_md = x16;
    } else if (op == 2) {
      dst_md = y16;
    } else {
      src_md = x16;
      dst_md = y16;
      wei_md = memory::desc(wdims, dt::f32, tag::any);
    }
  }
  auto e = std::make_unique<Entry>();
  const bool bias = p[P_BIAS] != 0 && op <= 1;
  auto fwd_desc = [&](prop_kind pk) {
    return bias ? convolution_forward::desc(pk, algorithm::convolution_direct, src_md, wei_md, bias_user, dst_md, strides, dil, pl, pr)
                : convolution_forward::desc(pk, algorithm::convolution_direct, src_md, wei_md, dst_md, strides, dil, pl, pr);
  };
  if (op <= 1) {
    primitive_attr attr;
    set_post_op(attr, p[P_ACT], alpha);
    convolution_forward::primitive_desc pd(fwd_desc(op == 0 ? prop_kind::forward_training : prop_kind::forward_inference), attr, cpu_engine());
    if (math == dt::bf16 && is_reference(pd.impl_info_str())) throw no_fast_kernel();
    e->prim = convolution_forward(pd);
    e->ins.push_back(input_slot(DNNL_ARG_SRC, src_user, pd.src_desc()));
    e->ins.push_back(input_slot(DNNL_ARG_WEIGHTS, wei_user, pd.weights_desc()));
    if (bias) e->ins.push_back(input_slot(DNNL_ARG_BIAS, bias_user, pd.bias_desc()));
    e->out = output_slot(DNNL_ARG_DST, dst_user, pd.dst_desc());
    e->keeps_weights = op == 1;
  } else if (op == 2 || op == 3) {
    // The gradients need the forward primitive as a hint: the input's (op 2) or the weights' (op 3).
    // In bf16 the hint is the bf16 forward (bf16 x and filter, float32 y).
    const auto hint_desc = math == dt::bf16 ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, memory::desc({N, C, H, W}, dt::bf16, tag::any),
                                                                        memory::desc(wdims, dt::bf16, tag::any), memory::desc({N, O, oH, oW}, dt::f32, tag::any), strides, dil, pl, pr)
                                            : fwd_desc(prop_kind::forward_training);
    convolution_forward::primitive_desc hint(hint_desc, cpu_engine());
    if (math == dt::bf16 && is_reference(hint.impl_info_str())) throw no_fast_kernel();
    std::string impl;
    if (op == 2)
      impl = backward_conv<convolution_backward_data>(*e, convolution_backward_data::desc(algorithm::convolution_direct, src_md, wei_md, dst_md, strides, dil, pl, pr), hint,
                                               {{DNNL_ARG_DIFF_DST, &dst_user}, {DNNL_ARG_WEIGHTS, &wei_user}}, DNNL_ARG_DIFF_SRC, src_user);
    else
      impl = backward_conv<convolution_backward_weights>(*e, convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_md, dst_md, strides, dil, pl, pr), hint,
                                                  {{DNNL_ARG_SRC, &src_user}, {DNNL_ARG_DIFF_DST, &dst_user}}, DNNL_ARG_DIFF_WEIGHTS, wei_user);
    if (math == dt::bf16 && is_reference(impl.c_str())) throw no_fast_kernel();
  } else {
    throw std::runtime_error("unknown convolution op " + std::to_string(op));
  }
  return e;
}

// A primitive in the current arithmetic: `make(dt::bf16)` in bf16 mode where this CPU has a
// bf16 kernel for it, `make(dt::f32)` otherwise (and always in float32 mode).
template <typename Make>
std::unique_ptr<Entry> in_math(Make make) {
  if (g_math == 1) {
    try {
      return make(dt::bf16);
    } catch (const no_fast_kernel&) {
    } catch (const dnnl::error&) {
    }
  }
  return make(dt::f32);
}

std::unique_ptr<Entry> make_conv(const int32_t* p, float alpha) {
  return in_math([&](dt math) { return make_conv_as(p, alpha, math); });
}

Entry& cached(const std::string& key, const std::function<std::unique_ptr<Entry>()>& make) {
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return *it->second;
  auto e = make();
  Entry& ref = *e;
  g_cache.emplace(key, std::move(e));
  return ref;
}

// Checks that [offset, offset + bytes) lies inside the heap: a bad offset must be an error,
// never a write into the wrong memory.
bool in_heap(napi_env env, size_t heap_bytes, double offset, double bytes) {
  if (offset < 0 || offset + bytes > static_cast<double>(heap_bytes)) {
    napi_throw_range_error(env, nullptr, "utkface_onednn: operand outside the wasm heap");
    return false;
  }
  return true;
}

// One heap op's checked arguments: `want` arguments, the wasm heap first and, for an op with
// shape parameters (params > 0), an Int32Array of at least `params` of them second. Every op
// on the heap starts here, so a missing argument, something else than a typed array or a short
// parameter array is a JS error, never a read past an end.
struct HeapCall {
  Args a;
  uint8_t* heap = nullptr;
  size_t heap_bytes = 0;
  const int32_t* p = nullptr;
  // Argument i as a number (a byte offset, a count, epsilon, alpha).
  double num(size_t i) const { return number(a.env, a.v[i]); }
  // Whether [offset, offset + bytes) lies in the heap (a range error is thrown when not).
  bool fits(double offset, double bytes) const { return in_heap(a.env, heap_bytes, offset, bytes); }
  // The operand at a byte offset that fits() accepted.
  template <typename T>
  T* at(double offset) const { return reinterpret_cast<T*>(heap + size_t(offset)); }
};

bool heap_call(napi_env env, napi_callback_info info, size_t want, const char* op, size_t params, HeapCall& c) {
  if (!get_args(env, info, want, c.a) || !typed(env, c.a.v[0], &c.heap, &c.heap_bytes)) return false;
  if (params == 0) return true;
  uint8_t* pbytes;
  size_t pn;
  if (!typed(env, c.a.v[1], &pbytes, &pn)) return false;
  if (pn < params * 4) {
    napi_throw_error(env, nullptr, (std::string("utkface_onednn: ") + op + " needs " + std::to_string(params) + " parameters").c_str());
    return false;
  }
  c.p = reinterpret_cast<const int32_t*>(pbytes);
  return true;
}

// conv(heap: Uint8Array, params: Int32Array, a, b, c, out: byte offsets, alpha, weightId?)
napi_value Conv(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, 7, "conv", P_COUNT, call)) return nullptr;
  double weight_id = 0;
  {
    size_t argc = 8;
    napi_value argv[8];
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc >= 8) {
      napi_valuetype t;
      napi_typeof(env, argv[7], &t);
      if (t == napi_number) weight_id = number(env, argv[7]);
    }
  }
  const int32_t* p = call.p;
  const double o0 = call.num(2), o1 = call.num(3), o2 = call.num(4), o3 = call.num(5);
  const float alpha = static_cast<float>(call.num(6));
  const double N = p[P_N], H = p[P_H], W = p[P_W], C = p[P_C], O = p[P_O], oH = p[P_OH], oW = p[P_OW], kk = double(p[P_KH]) * p[P_KW];
  const double xb = N * H * W * C * 4, yb = N * oH * oW * O * 4, wb = kk * (p[P_G] == 1 ? C * O : O) * 4;
  const int op = p[P_OP];
  bool ok = op <= 1   ? call.fits(o0, xb) && call.fits(o1, wb) && (!p[P_BIAS] || call.fits(o2, O * 4)) && call.fits(o3, yb)
            : op == 2 ? call.fits(o0, yb) && call.fits(o1, wb) && call.fits(o3, xb)
                      : call.fits(o0, xb) && call.fits(o1, yb) && call.fits(o3, wb);
  if (!ok) return nullptr;
  return guarded(env, [&]() {
    if (winograd_pays(p)) {
      wino_conv(key_of("wino", p, P_COUNT, alpha), p, call.at<float>(o0), call.at<float>(o1), p[P_BIAS] && op <= 1 ? call.at<float>(o2) : nullptr, call.at<float>(o3), weight_id);
      return undefined(env);
    }
    Entry& e = cached(key_of("conv", p, P_COUNT, alpha), [&]() { return make_conv(p, alpha); });
    std::vector<void*> ins{call.at<uint8_t>(o0), call.at<uint8_t>(o1)};
    if (op <= 1 && p[P_BIAS]) ins.push_back(call.at<uint8_t>(o2));
    // The filter is an input of forward and backward-data calls (not of backward-weights).
    run(e, ins, call.at<uint8_t>(o3), op <= 2 ? weight_id : 0);
    return undefined(env);
  });
}

// ---- matmul --------------------------------------------------------------------------------
// p: batchA batchB M K N transposeA transposeB hasBias act; offsets (a, b, bias, out).

std::unique_ptr<Entry> make_matmul_as(const int32_t* p, float alpha, dt math) {
  const memory::dim bA = p[M_BA], bB = p[M_BB], M = p[M_M], K = p[M_K], Nn = p[M_N];
  const memory::dims a_strides = p[M_TA] ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1};
  const memory::dims b_strides = p[M_TB] ? memory::dims{K * Nn, 1, K} : memory::dims{K * Nn, Nn, 1};
  memory::desc a_md({bA, M, K}, dt::f32, a_strides);
  memory::desc b_md({bB, K, Nn}, dt::f32, b_strides);
  memory::desc c_md({std::max(bA, bB), M, Nn}, dt::f32, tag::abc);
  memory::desc bias_md({1, 1, Nn}, dt::f32, tag::abc);
  primitive_attr attr;
  set_post_op(attr, p[M_ACT], alpha);
  // bf16: both factors rounded on their way in (same strides), the product in float32.
  const memory::desc a_prim = math == dt::bf16 ? memory::desc({bA, M, K}, dt::bf16, a_strides) : a_md;
  const memory::desc b_prim = math == dt::bf16 ? memory::desc({bB, K, Nn}, dt::bf16, b_strides) : b_md;
  auto d = p[M_BIAS] ? matmul::desc(a_prim, b_prim, bias_md, c_md) : matmul::desc(a_prim, b_prim, c_md);
  matmul::primitive_desc pd(d, attr, cpu_engine());
  if (math == dt::bf16 && is_reference(pd.impl_info_str())) throw no_fast_kernel();
  auto e = std::make_unique<Entry>();
  e->prim = matmul(pd);
  e->ins.push_back(input_slot(DNNL_ARG_SRC, a_md, pd.src_desc()));
  e->ins.push_back(input_slot(DNNL_ARG_WEIGHTS, b_md, pd.weights_desc()));
  if (p[M_BIAS]) e->ins.push_back(input_slot(DNNL_ARG_BIAS, bias_md, pd.bias_desc()));
  e->out = output_slot(DNNL_ARG_DST, c_md, pd.dst_desc());
  return e;
}

std::unique_ptr<Entry> make_matmul(const int32_t* p, float alpha) {
  return in_math([&](dt math) { return make_matmul_as(p, alpha, math); });
}

napi_value MatMul(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, 7, "matmul", M_COUNT, call)) return nullptr;
  const int32_t* p = call.p;
  const double o0 = call.num(2), o1 = call.num(3), o2 = call.num(4), o3 = call.num(5);
  const float alpha = static_cast<float>(call.num(6));
  const double M = p[M_M], K = p[M_K], Nn = p[M_N];
  if (!call.fits(o0, p[M_BA] * M * K * 4) || !call.fits(o1, p[M_BB] * K * Nn * 4) ||
      (p[M_BIAS] && !call.fits(o2, Nn * 4)) || !call.fits(o3, std::max(p[M_BA], p[M_BB]) * M * Nn * 4))
    return nullptr;
  return guarded(env, [&]() {
    Entry& e = cached(key_of("matmul", p, M_COUNT, alpha), [&]() { return make_matmul(p, alpha); });
    std::vector<void*> ins{call.at<uint8_t>(o0), call.at<uint8_t>(o1)};
    if (p[M_BIAS]) ins.push_back(call.at<uint8_t>(o2));
    run(e, ins, call.at<uint8_t>(o3));
    return undefined(env);
  });
}

// ---- max pooling ---------------------------------------------------------------------------
// p: N H W C oH oW kH kW sH sW padTop padLeft padBottom padRight

std::unique_ptr<Entry> make_maxpool(const int32_t* p) {
  const memory::dim N = p[Q_N], H = p[Q_H], W = p[Q_W], C = p[Q_C], oH = p[Q_OH], oW = p[Q_OW];
  memory::desc src({N, C, H, W}, dt::f32, tag::nhwc);
  memory::desc dst({N, C, oH, oW}, dt::f32, tag::nhwc);
  pooling_forward::desc d(prop_kind::forward_inference, algorithm::pooling_max, src, dst, {p[Q_SH], p[Q_SW]}, {p[Q_KH], p[Q_KW]}, {p[Q_PT], p[Q_PL]}, {p[Q_PB], p[Q_PR]});
  pooling_forward::primitive_desc pd(d, cpu_engine());
  auto e = std::make_unique<Entry>();
  e->prim = pooling_forward(pd);
  e->ins.push_back(input_slot(DNNL_ARG_SRC, src, pd.src_desc()));
  e->out = output_slot(DNNL_ARG_DST, dst, pd.dst_desc());
  return e;
}

// Max-pool gradient on oneDNN: a forward pass in training mode records each window's argmax
// in a workspace (tfjs keeps none), then the backward primitive routes dy through it.
struct PoolGrad {
  pooling_forward fwd;
  pooling_backward bwd;
  memory::desc src, dst;
  memory y, ws;  // the forward's output and workspace, owned here
};

std::unordered_map<std::string, std::unique_ptr<PoolGrad>> g_pool_grads;

PoolGrad& pool_grad(const int32_t* p) {
  const std::string key = key_of("maxpoolgrad", p, Q_COUNT, 0);
  auto it = g_pool_grads.find(key);
  if (it != g_pool_grads.end()) return *it->second;
  const memory::dim N = p[Q_N], H = p[Q_H], W = p[Q_W], C = p[Q_C], oH = p[Q_OH], oW = p[Q_OW];
  auto g = std::make_unique<PoolGrad>();
  g->src = memory::desc({N, C, H, W}, dt::f32, tag::nhwc);
  g->dst = memory::desc({N, C, oH, oW}, dt::f32, tag::nhwc);
  memory::dims strides{p[Q_SH], p[Q_SW]}, kernel{p[Q_KH], p[Q_KW]}, pl{p[Q_PT], p[Q_PL]}, pr{p[Q_PB], p[Q_PR]};
  pooling_forward::desc fd(prop_kind::forward_training, algorithm::pooling_max, g->src, g->dst, strides, kernel, pl, pr);
  pooling_forward::primitive_desc fpd(fd, cpu_engine());
  pooling_backward::desc bd(algorithm::pooling_max, g->src, g->dst, strides, kernel, pl, pr);
  pooling_backward::primitive_desc bpd(bd, cpu_engine(), fpd);
  if (fpd.src_desc() != g->src || fpd.dst_desc() != g->dst || bpd.diff_src_desc() != g->src || bpd.diff_dst_desc() != g->dst)
    throw std::runtime_error("pooling primitive wants another layout");
  g->fwd = pooling_forward(fpd);
  g->bwd = pooling_backward(bpd);
  g->y = memory(g->dst, cpu_engine());
  g->ws = memory(fpd.workspace_desc(), cpu_engine());
  PoolGrad& ref = *g;
  g_pool_grads.emplace(key, std::move(g));
  return ref;
}

double pool_bytes(const int32_t* p, bool out) {
  return double(p[Q_N]) * (out ? double(p[Q_OH]) * p[Q_OW] : double(p[Q_H]) * p[Q_W]) * p[Q_C] * 4;
}

// maxPool(heap, params, x, y)
napi_value MaxPool(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, 4, "maxPool", Q_COUNT, call)) return nullptr;
  const int32_t* p = call.p;
  const double ox = call.num(2), oy = call.num(3);
  if (!call.fits(ox, pool_bytes(p, false)) || !call.fits(oy, pool_bytes(p, true))) return nullptr;
  return guarded(env, [&]() {
    Entry& e = cached(key_of("maxpool", p, Q_COUNT, 0), [&]() { return make_maxpool(p); });
    run(e, {call.at<uint8_t>(ox)}, call.at<uint8_t>(oy));
    return undefined(env);
  });
}

// maxPoolGrad(heap, params, x, dy, dx): each dy value goes to the first maximum of its window
// (row-major taps, strict '>'), the rule of tfjs's cpu kernel. Tiling windows (every pooling
// layer of the project's models) run oneDNN's backward; overlapping or padded windows, where
// tie order could differ, run a direct loop, parallel over images.
// MaxPoolGrad over tiling windows (stride = window, no padding) from tfjs's own forward output
// y, rows [r0, r1) of N x oH: dx = dy at the first cell of each window that equals the window's
// maximum y (cpu's first-maximum rule, row by row), 0 at the window's other cells (the sign of a
// -0 gradient kept at the maximum, as cpu). One pass over x, y and dy, vectorised over channels;
// cells past the last window are left to the caller.
UTKFACE_CLONES void pool_grad_tiles_rows(int64_t r0, int64_t r1, int H, int W, int C, int oH, int oW, int kH, int kW, const float* __restrict x, const float* __restrict y,
                                         const float* __restrict dy, float* __restrict dx, float* __restrict rem) {
  for (int64_t r = r0; r < r1; r++) {
    const int64_t n = r / oH;
    const int i = int(r % oH);
    const int64_t img = n * H * W * C;
    for (int j = 0; j < oW; j++) {
      const int64_t o = ((n * oH + i) * oW + j) * C;
      const float* __restrict m = y + o;
      // rem: the gradient not yet placed, per channel (dy until the first maximum takes it, then
      // 0); all float selects, so the channel loops vectorise.
      for (int c = 0; c < C; c++) rem[c] = dy[o + c];
      for (int u = 0; u < kH; u++) {
        for (int v = 0; v < kW; v++) {
          const int64_t cell = img + (int64_t(i * kH + u) * W + j * kW + v) * C;
          const float* __restrict xv = x + cell;
          float* __restrict d = dx + cell;
          for (int c = 0; c < C; c++) {
            const bool hit = xv[c] == m[c];
            d[c] = hit ? rem[c] : 0.f;
            rem[c] = hit ? 0.f : rem[c];
          }
        }
      }
    }
  }
}

napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, 5, "maxPoolGrad", Q_COUNT, call)) return nullptr;
  const int32_t* p = call.p;
  const double ox = call.num(2), ody = call.num(3), odx = call.num(4);
  // The forward output y, an optional sixth argument (absent or 0: oneDNN's backward, from its
  // own forward).
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const double oy = argc > 5 ? number(env, argv[5]) : 0;
  if (!call.fits(ox, pool_bytes(p, false)) || !call.fits(ody, pool_bytes(p, true)) || !call.fits(odx, pool_bytes(p, false)) || (oy > 0 && !call.fits(oy, pool_bytes(p, true))))
    return nullptr;
  const int N = p[Q_N], H = p[Q_H], W = p[Q_W], C = p[Q_C], oH = p[Q_OH], oW = p[Q_OW], kH = p[Q_KH], kW = p[Q_KW], sH = p[Q_SH], sW = p[Q_SW], pT = p[Q_PT], pL = p[Q_PL];
  const float* x = call.at<const float>(ox);
  const float* dy = call.at<const float>(ody);
  float* dx = call.at<float>(odx);
  const bool tiles = kH == sH && kW == sW && pT == 0 && pL == 0 && p[Q_PB] == 0 && p[Q_PR] == 0 && oH * sH <= H && oW * sW <= W;
  if (tiles && oy > 0) {
    // With y: one pass, no forward to recompute (oneDNN's backward needs a workspace from a
    // training forward, which tfjs does not keep: that forward cost as much as the backward).
    FlushDenormals flush;
    const float* y = call.at<const float>(oy);
    const int64_t rows = int64_t(N) * oH;
#pragma omp parallel
    {
      std::vector<float> rem(C);
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      pool_grad_tiles_rows(rows * t / nt, rows * (t + 1) / nt, H, W, C, oH, oW, kH, kW, x, y, dy, dx, rem.data());
#pragma omp barrier
      // Columns and rows past the last window get no gradient.
      if (oW * sW < W) {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
          const int n = int(r / oH), i = int(r % oH);
          for (int u = 0; u < kH; u++) std::memset(dx + int64_t(n) * H * W * C + (int64_t(i * sH + u) * W + oW * sW) * C, 0, sizeof(float) * size_t(W - oW * sW) * C);
        }
      }
      if (oH * sH < H) {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) std::memset(dx + int64_t(n) * H * W * C + int64_t(oH * sH) * W * C, 0, sizeof(float) * size_t(H - oH * sH) * W * C);
      }
    }
    return undefined(env);
  }
  if (tiles) {
    // oneDNN's jit backward is ~8x faster than the loop below (1.9 vs 16 ms for the report
    // CNN's first pooling, 1 thread); with tiling windows it keeps the first maximum, as cpu.
    try {
      PoolGrad& g = pool_grad(p);
      HoldSignals hold;
      stream& s = cpu_stream();
      memory xm(g.src, cpu_engine(), call.at<uint8_t>(ox)), dym(g.dst, cpu_engine(), call.at<uint8_t>(ody)), dxm(g.src, cpu_engine(), call.at<uint8_t>(odx));
      g.fwd.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, g.y}, {DNNL_ARG_WORKSPACE, g.ws}});
      g.bwd.execute(s, {{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WORKSPACE, g.ws}, {DNNL_ARG_DIFF_SRC, dxm}});
      s.wait();
      return undefined(env);
    } catch (const std::exception&) {
      // a layout or shape oneDNN will not do: the loops below are exact for any window
    }
  }
  if (tiles) {
    // Every input cell lies in at most one window: write each window's cells once (dy at the
    // first maximum, 0 elsewhere) with channel loops the compiler vectorises; no scatter.
    const int64_t rows = int64_t(N) * oH;
#pragma omp parallel
    {
      std::vector<float> best(C);
      std::vector<int32_t> at(C);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; r++) {
        const int n = int(r / oH), i = int(r % oH);
        const int64_t img = int64_t(n) * H * W * C;
        for (int j = 0; j < oW; j++) {
          float* b = best.data();
          int32_t* a = at.data();
          for (int c = 0; c < C; c++) {
            b[c] = -std::numeric_limits<float>::infinity();
            a[c] = -1;
          }
          for (int t = 0; t < kH * kW; t++) {
            const float* xv = x + img + (int64_t(i * sH + t / kW) * W + j * sW + t % kW) * C;
            for (int c = 0; c < C; c++) {
              const bool gt = xv[c] > b[c];
              b[c] = gt ? xv[c] : b[c];
              a[c] = gt ? t : a[c];
            }
          }
          const float* g = dy + ((int64_t(n) * oH + i) * oW + j) * C;
          for (int t = 0; t < kH * kW; t++) {
            float* d = dx + img + (int64_t(i * sH + t / kW) * W + j * sW + t % kW) * C;
            for (int c = 0; c < C; c++) d[c] = a[c] == t ? g[c] : 0.f;
          }
        }
        // Columns past the last window get no gradient.
        for (int u = 0; u < kH; u++) {
          float* d = dx + img + (int64_t(i * sH + u) * W + oW * sW) * C;
          std::memset(d, 0, sizeof(float) * size_t(W - oW * sW) * C);
        }
      }
      // Rows past the last window get no gradient.
#pragma omp for schedule(static)
      for (int n = 0; n < N; n++) {
        const int64_t img = int64_t(n) * H * W * C;
        std::memset(dx + img + int64_t(oH * sH) * W * C, 0, sizeof(float) * size_t(H - oH * sH) * W * C);
      }
    }
    return undefined(env);
  }
#pragma omp parallel
  {
    std::vector<float> best(C);
    std::vector<int64_t> at(C);
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const int64_t img = int64_t(n) * H * W * C;
      std::memset(dx + img, 0, sizeof(float) * size_t(H) * W * C);
      for (int i = 0; i < oH; i++) {
        for (int j = 0; j < oW; j++) {
          std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
          std::fill(at.begin(), at.end(), -1);
          for (int u = 0; u < kH; u++) {
            const int r = i * sH - pT + u;
            if (r < 0 || r >= H) continue;
            for (int v = 0; v < kW; v++) {
              const int c0 = j * sW - pL + v;
              if (c0 < 0 || c0 >= W) continue;
              const int64_t base = img + (int64_t(r) * W + c0) * C;
              for (int c = 0; c < C; c++) {
                const float val = x[base + c];
                if (val > best[c]) {
                  best[c] = val;
                  at[c] = base + c;
                }
              }
            }
          }
          const float* g = dy + ((int64_t(n) * oH + i) * oW + j) * C;
          for (int c = 0; c < C; c++)
            if (at[c] >= 0) dx[at[c]] += g[c];
        }
      }
    }
  }
  return undefined(env);
}

// ---- reductions and element-wise ---------------------------------------------------------

// SumRows' loop over rows [r0, r1): float sums over runs of 64 rows (vectorised), each run
// flushed into the double accumulators acc[Cn].
UTKFACE_CLONES void sum_rows_range(const float* __restrict x, int64_t r0, int64_t r1, int64_t Cn, double* __restrict acc) {
  std::vector<float> block(Cn);
  float* __restrict b = block.data();
  for (int64_t r = r0; r < r1; r += 64) {
    const int64_t end = std::min(r1, r + 64);
    std::fill(block.begin(), block.end(), 0.f);
    for (int64_t q = r; q < end; q++) {
      const float* row = x + q * Cn;
      for (int64_t c = 0; c < Cn; c++) b[c] += row[c];
    }
    for (int64_t c = 0; c < Cn; c++) acc[c] += b[c];
  }
}

// sumRows(heap, rows, cols, x, y): y[c] = sum over r of x[r][c] (a bias gradient: dy summed
// over batch, height and width). Each thread sums a block of rows into its own partial row,
// in double, then the partials are added in thread order (deterministic for a thread count).
napi_value SumRows(napi_env env, napi_callback_info info) {
  FlushDenormals flush;
  HeapCall call;
  if (!heap_call(env, info, 5, nullptr, 0, call)) return nullptr;
  const double rows = call.num(1), cols = call.num(2), ox = call.num(3), oy = call.num(4);
  if (rows < 1 || cols < 1 || !call.fits(ox, rows * cols * 4) || !call.fits(oy, cols * 4)) return nullptr;
  const int64_t R = int64_t(rows), Cn = int64_t(cols);
  const float* x = call.at<const float>(ox);
  float* y = call.at<float>(oy);
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(1, R * Cn / 32768)));
  std::vector<double> partial(size_t(threads) * Cn, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = R * t / nt, r1 = R * (t + 1) / nt;
    double* acc = partial.data() + int64_t(t) * Cn;
    sum_rows_range(x, r0, r1, Cn, acc);
  }
  for (int64_t c = 0; c < Cn; c++) {
    double s = 0;
    for (int t = 0; t < threads; t++) s += partial[size_t(t) * Cn + c];
    y[c] = float(s);
  }
  return undefined(env);
}

// ---- batch normalization (inference form: given mean and variance) -------------------------
// batchNorm(heap, params [N H W C hasScale hasShift], x, mean, variance, scale, shift, y, epsilon):
// y = scale * (x - mean) / sqrt(variance + epsilon) + shift, per channel, NHWC.
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  HeapCall call;
  if (!heap_call(env, info, 9, "batchNorm", B_COUNT, call)) return nullptr;
  const int32_t* p = call.p;
  double off[6];
  for (int i = 0; i < 6; i++) off[i] = call.num(2 + i);
  const float eps = static_cast<float>(call.num(8));
  const double n = double(p[B_N]) * p[B_H] * p[B_W] * p[B_C], c = p[B_C];
  if (!call.fits(off[0], n * 4) || !call.fits(off[1], c * 4) || !call.fits(off[2], c * 4) ||
      (p[B_SCALE] && !call.fits(off[3], c * 4)) || (p[B_SHIFT] && !call.fits(off[4], c * 4)) || !call.fits(off[5], n * 4))
    return nullptr;
  int32_t eps_bits;
  std::memcpy(&eps_bits, &eps, 4);
  return guarded(env, [&]() {
    Entry& e = cached(key_of("bnorm", p, B_COUNT, eps_bits), [&]() {
      const memory::dim N = p[B_N], H = p[B_H], W = p[B_W], C = p[B_C];
      memory::desc data({N, C, H, W}, dt::f32, tag::nhwc);
      memory::desc vec({C}, dt::f32, tag::a);
      auto flags = normalization_flags::use_global_stats;
      if (p[B_SCALE]) flags = flags | normalization_flags::use_scale;
      if (p[B_SHIFT]) flags = flags | normalization_flags::use_shift;
      batch_normalization_forward::desc d(prop_kind::forward_inference, data, eps, flags);
      batch_normalization_forward::primitive_desc pd(d, cpu_engine());
      auto entry = std::make_unique<Entry>();
      entry->prim = batch_normalization_forward(pd);
      entry->ins.push_back(input_slot(DNNL_ARG_SRC, data, pd.src_desc()));
      entry->ins.push_back(input_slot(DNNL_ARG_MEAN, vec, pd.mean_desc()));
      entry->ins.push_back(input_slot(DNNL_ARG_VARIANCE, vec, pd.variance_desc()));
      if (p[B_SCALE]) entry->ins.push_back(input_slot(DNNL_ARG_SCALE, vec, vec));
      if (p[B_SHIFT]) entry->ins.push_back(input_slot(DNNL_ARG_SHIFT, vec, vec));
      entry->out = output_slot(DNNL_ARG_DST, data, pd.dst_desc());
      return entry;
    });
    std::vector<void*> ins{call.at<uint8_t>(off[0]), call.at<uint8_t>(off[1]), call.at<uint8_t>(off[2])};
    if (p[B_SCALE]) ins.push_back(call.at<uint8_t>(off[3]));
    if (p[B_SHIFT]) ins.push_back(call.at<uint8_t>(off[4]));
    run(e, ins, call.at<uint8_t>(off[5]));
    return undefined(env);
  });
}

// ---- gradients of ReLU6 (clip) and batch normalization -------------------------------------

// A pointwise gradient's loop over [i0, i1): dx[i] = grad(x[i], dy[i]; a, b).
using PointwiseRange = void (*)(int64_t i0, int64_t i1, const float* x, const float* dy, float* dx, float a, float b);

// The shared body of the pointwise passes (the gradients below, ReLU and ClipByValue), (heap, n,
// x, dy, dx, [a, b]): one threaded pass of `range`; a and b are the op's own arguments after dx
// (0 where it has none).
napi_value pointwise_grad(napi_env env, napi_callback_info info, size_t want, PointwiseRange range) {
  FlushDenormals flush;
  HeapCall call;
  if (!heap_call(env, info, want, nullptr, 0, call)) return nullptr;
  const double n = call.num(1), ox = call.num(2), ody = call.num(3), odx = call.num(4);
  const float a = want > 5 ? float(call.num(5)) : 0.f, b = want > 6 ? float(call.num(6)) : 0.f;
  if (!call.fits(ox, n * 4) || !call.fits(ody, n * 4) || !call.fits(odx, n * 4)) return nullptr;
  const float* x = call.at<const float>(ox);
  const float* dy = call.at<const float>(ody);
  float* dx = call.at<float>(odx);
  const int64_t N = int64_t(n);
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(1, N / 65536)));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    range(N * t / nt, N * (t + 1) / nt, x, dy, dx, a, b);
  }
  return undefined(env);
}

// clipGrad(heap, n, x, dy, dx, lo, hi): dx = lo <= x <= hi ? dy : 0 (tfjs's ClipByValue
// gradient, so ReLU6's: both ends inclusive, as tfjs writes it). One threaded pass instead of
// GreaterEqual, LessEqual, LogicalAnd, ZerosLike and Select on wasm.
UTKFACE_CLONES void clip_grad_range(int64_t i0, int64_t i1, const float* x, const float* dy, float* dx, float lo, float hi) {
  for (int64_t i = i0; i < i1; i++) dx[i] = (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.f;
}

napi_value ClipGrad(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 7, clip_grad_range); }

// BatchNormGrad's loop over rows [r0, r1): dx = dy * k per channel, and the channel sums of dy
// and dy (x - mean) in float over runs of 64 rows, flushed into the double accumulators.
UTKFACE_CLONES void batch_norm_grad_range(const float* __restrict x, const float* __restrict dy, const float* __restrict m, const float* __restrict k, float* __restrict dx,
                                          int64_t r0, int64_t r1, int64_t C, double* __restrict a1, double* __restrict a2) {
  std::vector<float> s1(C), s2(C);
  float* __restrict b1 = s1.data();
  float* __restrict b2 = s2.data();
  for (int64_t r = r0; r < r1; r += 64) {
    const int64_t end = std::min(r1, r + 64);
    std::fill(s1.begin(), s1.end(), 0.f);
    std::fill(s2.begin(), s2.end(), 0.f);
    for (int64_t q = r; q < end; q++) {
      const float* xr = x + q * C;
      const float* gr = dy + q * C;
      float* dr = dx + q * C;
      for (int64_t c = 0; c < C; c++) {
        const float g = gr[c];
        b1[c] += g;
        b2[c] += g * (xr[c] - m[c]);
        dr[c] = g * k[c];
      }
    }
    for (int64_t c = 0; c < C; c++) {
      a1[c] += b1[c];
      a2[c] += b2[c];
    }
  }
}

// batchNormGrad(heap, params [rows C hasScale], x, dy, mean, variance, scale, dx, dmean,
// dvariance, dscale, doffset, epsilon): the gradients of tfjs's FusedBatchNorm with per-channel
// statistics (x seen as rows x C), as tfjs's gradient defines them:
//   inv = 1/sqrt(variance + eps), dx = dy * scale * inv, doffset = sum dy,
//   dscale = sum dy (x - mean) inv, dmean = -inv scale sum dy,
//   dvariance = -0.5 inv^3 scale sum dy (x - mean).
// One pass for the two channel sums (per-thread partials in double) and one for dx.
napi_value BatchNormGrad(napi_env env, napi_callback_info info) {
  FlushDenormals flush;
  HeapCall call;
  if (!heap_call(env, info, 13, "batchNormGrad", G_COUNT, call)) return nullptr;
  const int32_t* p = call.p;
  double off[10];
  for (int i = 0; i < 10; i++) off[i] = call.num(2 + i);
  const float eps = float(call.num(12));
  const int64_t R = p[G_ROWS], C = p[G_C];
  const bool has_scale = p[G_SCALE] != 0;
  const double n = double(R) * C;
  // x, dy, mean, variance, scale, dx, dmean, dvariance, dscale, doffset
  const double sizes[10] = {n, n, double(C), double(C), double(C), n, double(C), double(C), double(C), double(C)};
  for (int i = 0; i < 10; i++) {
    if (i == 4 && !has_scale) continue;
    if (!call.fits(off[i], sizes[i] * 4)) return nullptr;
  }
  auto f = [&](int i) { return call.at<float>(off[i]); };
  const float *x = f(0), *dy = f(1), *mean = f(2), *var = f(3), *scale = has_scale ? f(4) : nullptr;
  float *dx = f(5), *dmean = f(6), *dvar = f(7), *dscale = f(8), *doffset = f(9);
  std::vector<float> inv(C), mul(C);
  for (int64_t c = 0; c < C; c++) {
    inv[c] = 1.f / std::sqrt(var[c] + eps);
    mul[c] = inv[c] * (has_scale ? scale[c] : 1.f);
  }
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(1, R * C / 32768)));
  std::vector<double> sdy(size_t(threads) * C, 0.0), sdyx(size_t(threads) * C, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = R * t / nt, r1 = R * (t + 1) / nt;
    batch_norm_grad_range(x, dy, mean, mul.data(), dx, r0, r1, C, sdy.data() + int64_t(t) * C, sdyx.data() + int64_t(t) * C);
  }
  for (int64_t c = 0; c < C; c++) {
    double s1 = 0, s2 = 0;
    for (int t = 0; t < threads; t++) {
      s1 += sdy[size_t(t) * C + c];
      s2 += sdyx[size_t(t) * C + c];
    }
    const double sc = has_scale ? scale[c] : 1.0, iv = inv[c];
    doffset[c] = float(s1);
    dscale[c] = float(s2 * iv);
    dmean[c] = float(-iv * sc * s1);
    dvar[c] = float(-0.5 * iv * iv * iv * sc * s2);
  }
  return undefined(env);
}

// meanGrad(heap, rows, cols, dy, dx, scale): dx[r][c] = dy[c] * scale, the gradient of a Mean
// over every axis but the last (BatchNorm's moments); tfjs builds it as Fill, Multiply, RealDiv.
napi_value MeanGrad(napi_env env, napi_callback_info info) {
  FlushDenormals flush;
  HeapCall call;
  if (!heap_call(env, info, 6, nullptr, 0, call)) return nullptr;
  const double rows = call.num(1), cols = call.num(2), ody = call.num(3), odx = call.num(4);
  const float scale = float(call.num(5));
  if (rows < 1 || cols < 1 || !call.fits(ody, cols * 4) || !call.fits(odx, rows * cols * 4)) return nullptr;
  const int64_t R = int64_t(rows), Cn = int64_t(cols);
  const float* dy = call.at<const float>(ody);
  float* dx = call.at<float>(odx);
  std::vector<float> row(Cn);
  for (int64_t c = 0; c < Cn; c++) row[c] = dy[c] * scale;
  const float* src = row.data();
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(1, R * Cn / 65536)));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < R; r++) std::memcpy(dx + r * Cn, src, sizeof(float) * size_t(Cn));
  return undefined(env);
}

// squareGrad(heap, n, x, dy, dx): dx = dy * 2x (tfjs: Cast, Multiply, Multiply).
UTKFACE_CLONES void square_grad_range(int64_t i0, int64_t i1, const float* x, const float* dy, float* dx, float, float) {
  for (int64_t i = i0; i < i1; i++) dx[i] = dy[i] * (x[i] * 2.f);
}

napi_value SquareGrad(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 5, square_grad_range); }

// reluGrad(heap, n, x, dy, dx): dx = dy * step(x), tfjs's Relu gradient (Step, Cast, Multiply
// on wasm) in one threaded pass: step is 1 for x > 0, NaN for NaN and 0 otherwise, and the
// product keeps dy * 0's sign, so dx equals tfjs's to the bit (denormals aside, see
// FlushDenormals).
UTKFACE_CLONES void relu_grad_range(int64_t i0, int64_t i1, const float* x, const float* dy, float* dx, float, float) {
  for (int64_t i = i0; i < i1; i++) {
    // Two selects, not nested branches: the compiler vectorises them (a branch on the sign
    // of x made this pass ten times slower than wasm's Step and Multiply).
    const float xi = x[i];
    float step = xi > 0.f ? 1.f : 0.f;
    step = xi != xi ? xi : step;
    dx[i] = dy[i] * step;
  }
}

napi_value ReluGrad(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 5, relu_grad_range); }

// relu6Grad(heap, n, x, dy, dx): tfjs's Relu6 gradient, dy * (x <= 6) * step(x) (LessEqual, Step,
// two Multiply and a Cast on wasm), in one pass: 0 at x = 0 and above 6, NaN for NaN, and the
// product keeps dy * 0's sign, as relu_grad_range.
UTKFACE_CLONES void relu6_grad_range(int64_t i0, int64_t i1, const float* x, const float* dy, float* dx, float, float) {
  for (int64_t i = i0; i < i1; i++) {
    const float xi = x[i];
    float mask = (xi > 0.f && xi <= 6.f) ? 1.f : 0.f;
    mask = xi != xi ? xi : mask;
    dx[i] = dy[i] * mask;
  }
}

napi_value Relu6Grad(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 5, relu6_grad_range); }

// ---- forward ReLU and ClipByValue (ReLU6) ----------------------------------------------------
// Both run through pointwise_grad's threaded pass with x as its "dy" (unused). Each equals the
// wasm backend's kernel (XNNPACK's clamp) to the bit on every finite value, -0 included, and on
// NaN, which Relu passes on and ClipByValue turns into its lower bound; a denormal x reads as 0
// where the addon flushes denormals (see FlushDenormals).

// relu(heap, n, x, x, y): y = max(x, 0) as wasm's f32x4.max computes it: +0 for -0 and for
// every negative, NaN for NaN. Two selects, so the loop vectorises.
UTKFACE_CLONES void relu_range(int64_t i0, int64_t i1, const float* x, const float*, float* y, float, float) {
  for (int64_t i = i0; i < i1; i++) {
    const float v = x[i];
    float r = v > 0.f ? v : 0.f;
    r = v != v ? v : r;
    y[i] = r;
  }
}

napi_value Relu(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 5, relu_range); }

// clip(heap, n, x, x, y, lo, hi): y = pmin(hi, pmax(lo, x)), XNNPACK's clamp on wasm SIMD
// (pmax(a, b) = a < b ? b : a): lo for NaN and for -0 when lo is 0.
UTKFACE_CLONES void clip_range(int64_t i0, int64_t i1, const float* x, const float*, float* y, float lo, float hi) {
  for (int64_t i = i0; i < i1; i++) {
    const float v = x[i];
    const float t = lo < v ? v : lo;
    y[i] = t < hi ? t : hi;
  }
}

napi_value Clip(napi_env env, napi_callback_info info) { return pointwise_grad(env, info, 7, clip_range); }

// Adam's loop over [i0, i1); k = b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps, -lr.
UTKFACE_CLONES void adam_range(int64_t i0, int64_t i1, const float* __restrict x, const float* __restrict g, const float* __restrict m, const float* __restrict v, float* __restrict xo, float* __restrict mo, float* __restrict vo, const float* __restrict k) {
  const float b1 = k[0], omb1 = k[1], b2 = k[2], omb2 = k[3], c1 = k[4], c2 = k[5], eps = k[6], neg_lr = k[7];
  for (int64_t i = i0; i < i1; i++) {
    const float gi = g[i];
    const float m2 = m[i] * b1 + gi * omb1;
    const float g2 = gi * gi;
    const float v2 = v[i] * b2 + g2 * omb2;
    const float mh = m2 / c1;
    const float vh = v2 / c2;
    const float step = mh / (std::sqrt(vh) + eps);
    mo[i] = m2;
    vo[i] = v2;
    xo[i] = step * neg_lr + x[i];
  }
}

// adam(heap, n, x, g, m, v, xOut, mOut, vOut, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps, -lr):
// one variable's Adam update in one threaded pass, with tfjs's own operations in tfjs's order
// (AdamOptimizer.applyGradients: Mul, Mul, Add; Square, Mul, Mul, Add; RealDiv, RealDiv, Sqrt,
// Add, RealDiv, Mul, Add), each rounded to float32 as those kernels round it, so the new
// variable and moments equal tfjs's to the bit. Writes three new buffers: tfjs never changes a
// tensor's values in place (the conv kernels cache reordered filters by tensor data).
napi_value Adam(napi_env env, napi_callback_info info) {
  FlushDenormals flush;
  HeapCall call;
  if (!heap_call(env, info, 17, "adam", 0, call)) return nullptr;
  const double n = call.num(1);
  double off[7];
  for (int i = 0; i < 7; i++) {
    off[i] = call.num(2 + i);
    if (!call.fits(off[i], n * 4)) return nullptr;
  }
  float k[8];
  for (int i = 0; i < 8; i++) k[i] = float(call.num(9 + i));
  const float* x = call.at<const float>(off[0]);
  const float* g = call.at<const float>(off[1]);
  const float* m = call.at<const float>(off[2]);
  const float* v = call.at<const float>(off[3]);
  float* xo = call.at<float>(off[4]);
  float* mo = call.at<float>(off[5]);
  float* vo = call.at<float>(off[6]);
  const int64_t N = int64_t(n);
  const int threads = int(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(1, N / 65536)));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    adam_range(N * t / nt, N * (t + 1) / nt, x, g, m, v, xo, mo, vo, k);
  }
  return undefined(env);
}

// ---- process settings ----------------------------------------------------------------------

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 1, a)) return nullptr;
  const int n = static_cast<int>(number(env, a.v[0]));
  if (n < 1) {
    napi_throw_range_error(env, nullptr, "utkface_onednn: threads must be >= 1");
    return nullptr;
  }
  omp_set_num_threads(n);
  return undefined(env);
}

napi_value SetBlocked(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 1, a)) return nullptr;
  bool b = true;
  napi_get_value_bool(env, a.v[0], &b);
  g_blocked = b;
  g_layout = b ? 0 : 1;
  return undefined(env);
}

// The one argument of a setter, a whole number in [lo, hi]; a range error naming `what` if not.
bool setting_arg(napi_env env, napi_callback_info info, int lo, int hi, const char* what, int* out) {
  Args a;
  if (!get_args(env, info, 1, a)) return false;
  const int n = static_cast<int>(number(env, a.v[0]));
  if (n < lo || n > hi) {
    napi_throw_range_error(env, nullptr, (std::string("utkface_onednn: ") + what).c_str());
    return false;
  }
  *out = n;
  return true;
}

// setLayout(0 blocked | 1 nhwc | 2 mixed | 3 auto)
napi_value SetLayout(napi_env env, napi_callback_info info) {
  int n;
  if (!setting_arg(env, info, 0, 3, "layout must be 0, 1, 2 or 3", &n)) return nullptr;
  g_layout = n;
  g_blocked = n == 0;
  return undefined(env);
}

// setMath(0 float32 | 1 bfloat16); see g_math.
napi_value SetMath(napi_env env, napi_callback_info info) {
  int n;
  if (!setting_arg(env, info, 0, 1, "math must be 0 (float32) or 1 (bfloat16)", &n)) return nullptr;
  g_math = n;
  return undefined(env);
}

// setWinograd(0 off | 1 forward inference | 2 also training's forward and backward data): the convolutions winograd_pays accepts.
napi_value SetWinograd(napi_env env, napi_callback_info info) {
  int n;
  if (!setting_arg(env, info, 0, 2, "winograd must be 0 (off), 1 (inference) or 2 (inference and training)", &n)) return nullptr;
  g_winograd = n;
  return undefined(env);
}

// mathKernel(): the kernel a bf16 3x3 convolution gets on this CPU ("brgconv:avx512_core_amx_bf16",
// ...), or "" when it has none but oneDNN's reference code.
napi_value MathKernel(napi_env env, napi_callback_info) {
  return guarded(env, [&]() {
    std::string impl;
    try {
      const memory::dim N = 2, C = 32, H = 16;
      memory::desc x({N, C, H, H}, dt::bf16, tag::nhwc), w({C, C, 3, 3}, dt::bf16, tag::any), y({N, C, H, H}, dt::f32, tag::nhwc);
      convolution_forward::primitive_desc pd(
          convolution_forward::desc(prop_kind::forward_inference, algorithm::convolution_direct, x, w, y, {1, 1}, {1, 1}, {1, 1}), cpu_engine());
      impl = pd.impl_info_str();
      if (is_reference(impl.c_str())) impl.clear();
    } catch (const dnnl::error&) {
      impl.clear();
    }
    napi_value out;
    napi_create_string_utf8(env, impl.c_str(), impl.size(), &out);
    return out;
  });
}

napi_value Info(napi_env env, napi_callback_info) {
  return guarded(env, [&]() {
    const dnnl_version_t* v = dnnl_version();
    napi_value obj, ver, threads, cached, isa, blocked;
    napi_create_object(env, &obj);
    std::string version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    napi_create_string_utf8(env, version.c_str(), version.size(), &ver);
    napi_create_int32(env, omp_get_max_threads(), &threads);
    napi_create_int32(env, static_cast<int32_t>(g_cache.size()), &cached);
    const char* isa_name = "unknown";
    switch (get_effective_cpu_isa()) {
      case cpu_isa::sse41: isa_name = "sse41"; break;
      case cpu_isa::avx: isa_name = "avx"; break;
      case cpu_isa::avx2: isa_name = "avx2"; break;
      case cpu_isa::avx512_core: isa_name = "avx512_core"; break;
      case cpu_isa::avx512_core_vnni: isa_name = "avx512_core_vnni"; break;
      case cpu_isa::avx512_core_bf16: isa_name = "avx512_core_bf16"; break;
      case cpu_isa::avx512_core_amx: isa_name = "avx512_core_amx"; break;
      case cpu_isa::avx2_vnni: isa_name = "avx2_vnni"; break;
      default: break;
    }
    napi_create_string_utf8(env, isa_name, NAPI_AUTO_LENGTH, &isa);
    napi_get_boolean(env, g_blocked, &blocked);
    napi_set_named_property(env, obj, "version", ver);
    napi_set_named_property(env, obj, "threads", threads);
    napi_set_named_property(env, obj, "cachedPrimitives", cached);
    napi_set_named_property(env, obj, "isa", isa);
    napi_set_named_property(env, obj, "blocked", blocked);
    napi_value layout;
    napi_create_string_utf8(env, g_layout == 0 ? "blocked" : g_layout == 1 ? "nhwc" : g_layout == 2 ? "mixed" : "auto", NAPI_AUTO_LENGTH, &layout);
    napi_set_named_property(env, obj, "layout", layout);
    napi_value native;
    napi_get_boolean(env, nhwc_native(), &native);
    napi_set_named_property(env, obj, "nhwcNative", native);
    napi_value math;
    napi_create_string_utf8(env, g_math == 1 ? "bf16" : "f32", NAPI_AUTO_LENGTH, &math);
    napi_set_named_property(env, obj, "math", math);
    napi_value wino;
    napi_create_string_utf8(env, g_winograd == 2 ? "on" : g_winograd == 1 ? "inference" : "off", NAPI_AUTO_LENGTH, &wino);
    napi_set_named_property(env, obj, "winograd", wino);
    napi_value wino_calls;
    napi_create_double(env, g_wino_calls, &wino_calls);
    napi_set_named_property(env, obj, "winogradCalls", wino_calls);
    return obj;
  });
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"conv", nullptr, Conv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matMul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool", nullptr, MaxPool, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGrad", nullptr, MaxPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumRows", nullptr, SumRows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, BatchNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setBlocked", nullptr, SetBlocked, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setLayout", nullptr, SetLayout, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setMath", nullptr, SetMath, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setWinograd", nullptr, SetWinograd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"mathKernel", nullptr, MathKernel, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clipGrad", nullptr, ClipGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormGrad", nullptr, BatchNormGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"meanGrad", nullptr, MeanGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"squareGrad", nullptr, SquareGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reluGrad", nullptr, ReluGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"relu6Grad", nullptr, Relu6Grad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"relu", nullptr, Relu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"clip", nullptr, Clip, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
