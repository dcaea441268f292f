// Winograd F(4x4, 3x3) convolutions for the addon (included by addon.cc, inside its anonymous
// namespace, after kept_copy, HoldSignals and FlushDenormals).
//
// A 3x3 convolution of stride 1 computes each 4x4 block of outputs from a 6x6 block of inputs
// with 36 products per input and output channel instead of 144 (Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2016, points 0, +-1, +-2): the input tile goes through
// B^T d B, the filter through G g G^T (once per filter tensor, kept like the direct kernels'
// reordered filters), the 36 transformed positions each become one matrix product over the
// channels (oneDNN's batched matmul: [tiles x C] x [C x O]), and A^T m A gives the 4x4 outputs,
// to which the bias and the activation are added. The matrix products hold 4x fewer
// multiply-adds than the direct convolution (2.9x at 17x17, where the 4x4 tiles overrun the
// edge); the transforms are memory passes around them.
//
// Forward inference goes this way, and in training the forward and backward-data calls (the
// input gradient is a convolution too: see WinoGeom); the filter gradient keeps the direct
// kernel. Only in float32 and only where it pays (winograd_pays). Its results differ
// from the direct convolution's by float rounding: the transforms add and subtract values
// scaled by up to 8 (relative differences of a few 1e-6 on real activations; test/onednn.test.ts).

constexpr int kWinoTiles = 36;  // 6x6 transformed positions

// The convolution the Winograd path computes, as a forward one. Backward data is one too: dx is
// dy convolved with the filter turned by 180 degrees, its input and output channels swapped,
// and the padding 2 - p on each side (dx[i] = sum_a dy[i + a - (2 - pt)] g[2 - a]).
struct WinoGeom {
  int64_t N, H, W, C, O, OH, OW, pt, pl;
  int act;
  bool flip;  // the filter turned and transposed (backward data)
};
WinoGeom wino_geom(const int32_t* p) {
  if (p[P_OP] == 2) return {p[P_N], p[P_OH], p[P_OW], p[P_O], p[P_C], p[P_H], p[P_W], 2 - p[P_PT], 2 - p[P_PL], 0, true};
  return {p[P_N], p[P_H], p[P_W], p[P_C], p[P_O], p[P_OH], p[P_OW], p[P_PT], p[P_PL], p[P_ACT], false};
}

// Whether this convolution takes the Winograd path: on (g_winograd: 1 forward inference only;
// 2, the default, also the forward and backward-data calls of training), a dense 3x3
// convolution of stride 1 without dilation, float32, an activation the output pass applies
// (none, ReLU, ReLU6), at least 32 channels in and 64 out (thinner matrix products, and the
// transforms' memory passes, lose to the direct kernel), and at least 16 tiles of 4x4 outputs
// in the batch (each product reads the whole transformed filter, 4x the direct kernel's: one
// 8x8 image of a 512-channel layer is 4 tiles, 0.6x the direct speed). Measured per shape in
// docs/performance.md (scripts/winograd-layers.ts).
int g_winograd = 2;
double g_wino_calls = 0;  // convolutions run this way (info().winogradCalls)
bool winograd_pays(const int32_t* p) {
  const int op = p[P_OP];
  if (g_winograd == 0 || g_math != 0 || !(op == 1 || (g_winograd == 2 && (op == 0 || op == 2)))) return false;
  if (p[P_G] != 1 || p[P_KH] != 3 || p[P_KW] != 3 || p[P_SH] != 1 || p[P_SW] != 1 || p[P_DH] != 1 || p[P_DW] != 1) return false;
  const WinoGeom g = wino_geom(p);
  const int64_t tiles = g.N * ((g.OH + 3) / 4) * ((g.OW + 3) / 4);
  // Training transforms a new filter for every call (inference once per filter): there it
  // takes 64 tiles (VGG19's 512-channel layers at 4x4, batch 25, are 25 tiles: 0.6x).
  return g.act <= 2 && g.C >= 32 && g.O >= 64 && tiles >= (op == 1 ? 16 : 64);
}

// B^T over six rows: out[i][k] = sum_r B^T[i][r] in[r][k], k < n.
UTKFACE_CLONES void wino_in6(const float* const* in, float* const* out, int64_t n) {
  const float *d0 = in[0], *d1 = in[1], *d2 = in[2], *d3 = in[3], *d4 = in[4], *d5 = in[5];
  float *r0 = out[0], *r1 = out[1], *r2 = out[2], *r3 = out[3], *r4 = out[4], *r5 = out[5];
#pragma GCC ivdep
  for (int64_t k = 0; k < n; k++) {
    const float a0 = d0[k], a1 = d1[k], a2 = d2[k], a3 = d3[k], a4 = d4[k], a5 = d5[k];
    r0[k] = 4.f * a0 - 5.f * a2 + a4;
    r1[k] = -4.f * (a1 + a2) + a3 + a4;
    r2[k] = 4.f * (a1 - a2) - a3 + a4;
    r3[k] = 2.f * (a3 - a1) - a2 + a4;
    r4[k] = 2.f * (a1 - a3) - a2 + a4;
    r5[k] = 4.f * a1 - 5.f * a3 + a5;
  }
}

// A^T over six rows: out[i][k] = sum_r A^T[i][r] in[r][k], k < n.
UTKFACE_CLONES void wino_out6(const float* const* in, float* const* out, int64_t n) {
  const float *m0 = in[0], *m1 = in[1], *m2 = in[2], *m3 = in[3], *m4 = in[4], *m5 = in[5];
  float *y0 = out[0], *y1 = out[1], *y2 = out[2], *y3 = out[3];
#pragma GCC ivdep
  for (int64_t k = 0; k < n; k++) {
    const float a1 = m1[k], a2 = m2[k], a3 = m3[k], a4 = m4[k];
    const float s12 = a1 + a2, d12 = a1 - a2, s34 = a3 + a4, d34 = a3 - a4;
    y0[k] = m0[k] + s12 + s34;
    y1[k] = d12 + 2.f * d34;
    y2[k] = s12 + 4.f * s34;
    y3[k] = d12 + 8.f * d34 + m5[k];
  }
}

// y = act(y + bias) over n values (act: 0 none, 1 ReLU, 2 ReLU6).
UTKFACE_CLONES void wino_bias_act(float* y, const float* bias, int64_t n, int act) {
  if (bias)
    for (int64_t k = 0; k < n; k++) y[k] += bias[k];
  if (act == 1)
    for (int64_t k = 0; k < n; k++) y[k] = y[k] > 0.f ? y[k] : 0.f;
  else if (act == 2)
    for (int64_t k = 0; k < n; k++) y[k] = std::min(std::max(y[k], 0.f), 6.f);
}

// G g G^T of a filter [3][3][C][O] into U[36][C][O].
void wino_filter(const float* g, float* U, int64_t C, int64_t O) {
  const int64_t CO = C * O;
  // One row of G applied to (v0, v1, v2): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
  // 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
#pragma omp parallel for simd schedule(static)
  for (int64_t co = 0; co < CO; co++) {
    float t[6][3];
    for (int b = 0; b < 3; b++) {
      const float v0 = g[b * CO + co], v1 = g[(3 + b) * CO + co], v2 = g[(6 + b) * CO + co];
      t[0][b] = v0 * (1.f / 4);
      t[1][b] = (v0 + v1 + v2) * (-1.f / 6);
      t[2][b] = (v0 - v1 + v2) * (-1.f / 6);
      t[3][b] = v0 * (1.f / 24) + v1 * (1.f / 12) + v2 * (1.f / 6);
      t[4][b] = v0 * (1.f / 24) - v1 * (1.f / 12) + v2 * (1.f / 6);
      t[5][b] = v2;
    }
    for (int i = 0; i < 6; i++) {
      const float v0 = t[i][0], v1 = t[i][1], v2 = t[i][2];
      float* u = U + i * 6 * CO + co;
      u[0 * CO] = v0 * (1.f / 4);
      u[1 * CO] = (v0 + v1 + v2) * (-1.f / 6);
      u[2 * CO] = (v0 - v1 + v2) * (-1.f / 6);
      u[3 * CO] = v0 * (1.f / 24) + v1 * (1.f / 12) + v2 * (1.f / 6);
      u[4 * CO] = v0 * (1.f / 24) - v1 * (1.f / 12) + v2 * (1.f / 6);
      u[5 * CO] = v2;
    }
  }
}

// The tfjs filter g [3][3][Cin][Cout] turned by 180 degrees with its channels swapped:
// out[a][b][o][c] = g[2 - a][2 - b][c][o] (backward data's filter).
void wino_flip(const float* g, float* out, int64_t Cin, int64_t Cout) {
  const int64_t CO = Cin * Cout;
#pragma omp parallel for schedule(static)
  for (int64_t ab = 0; ab < 9; ab++)
    for (int64_t o = 0; o < Cout; o++)
      for (int64_t c = 0; c < Cin; c++) out[ab * CO + o * Cin + c] = g[(8 - ab) * CO + c * Cout + o];
}

// One shape's plan: tiles per matrix product (Pc), the batched matmul and its buffers.
struct WinoPlan {
  int64_t tiles = 0, chunk = 0;  // tiles of the whole batch, tiles per matmul call
  matmul prim;
  memory::desc w_plain, w_prim;
  reorder w_reorder;  // plain -> the matmul's layout, when they differ
  memory V, M;        // [36][chunk][C] and [36][chunk][O]
  memory U;           // the transformed filter of a training call (a new filter every step)
  memory U_plain;     // [36][C][O] before the reorder into the matmul's layout
  std::vector<float> flipped;  // backward data's filter, turned and transposed
  std::vector<float> scratch;  // per thread: 36 x max(C, O) floats, then max(C, O) zeros
};
std::unordered_map<std::string, std::unique_ptr<WinoPlan>> g_wino;

WinoPlan& wino_plan(const std::string& key, const WinoGeom& geo) {
  auto it = g_wino.find(key);
  if (it != g_wino.end()) return *it->second;
  if (g_wino.size() >= 64) g_wino.clear();  // a plan per shape; a long run with many shapes starts over
  const int64_t C = geo.C, O = geo.O;
  auto plan = std::make_unique<WinoPlan>();
  plan->tiles = geo.N * ((geo.OH + 3) / 4) * ((geo.OW + 3) / 4);
  // Tiles per matrix product: about 6 MB of transformed input and output (they stay in cache
  // between the passes), but at least 128 tiles and at least 4x the transformed filter's bytes,
  // which each product reads whole (36 x 512 x 512 floats are 38 MB: one pass for all tiles).
  // The buffers stay under 48 MB (a batch of 256 at 8x8x512 would want 150 MB).
  const int64_t tile_bytes = kWinoTiles * (C + O) * 4;
  const int64_t fit = std::min(std::max({int64_t(128), (int64_t(6) << 20) / tile_bytes, 4 * C * O / (C + O)}), std::max<int64_t>(16, (int64_t(48) << 20) / tile_bytes));
  const int64_t calls = (plan->tiles + fit - 1) / fit;
  plan->chunk = (plan->tiles + calls - 1) / calls;
  const int64_t P = plan->chunk;
  memory::desc src({kWinoTiles, P, C}, dt::f32, tag::abc), dst({kWinoTiles, P, O}, dt::f32, tag::abc);
  plan->w_plain = memory::desc({kWinoTiles, C, O}, dt::f32, tag::abc);
  matmul::primitive_desc pd(matmul::desc(src, memory::desc({kWinoTiles, C, O}, dt::f32, tag::any), dst), cpu_engine());
  plan->prim = matmul(pd);
  plan->w_prim = pd.weights_desc();
  if (plan->w_prim != plan->w_plain) plan->w_reorder = reorder(reorder::primitive_desc(cpu_engine(), plan->w_plain, cpu_engine(), plan->w_prim));
  plan->V = memory(src, cpu_engine());
  plan->M = memory(dst, cpu_engine());
  const int64_t width = std::max(C, O);
  plan->scratch.assign(size_t(omp_get_max_threads()) * (kWinoTiles + 1) * width, 0.f);
  WinoPlan& ref = *plan;
  g_wino.emplace(key, std::move(plan));
  return ref;
}

// The filter in the matmul's layout: kept per tensor id (weight_id > 0), else made afresh.
// g is the tfjs filter; for backward data (flip) it is turned and transposed first.
memory wino_weights(WinoPlan& plan, const WinoGeom& geo, const float* g, double weight_id, bool inference, stream& s) {
  auto fill = [&](memory& out) {
    // Buffers of the plan, allocated once: a training step fills them for every layer.
    if (!plan.U_plain) plan.U_plain = memory(plan.w_plain, cpu_engine());
    memory& plain = plan.U_plain;
    if (geo.flip) {
      plan.flipped.resize(size_t(9 * geo.C * geo.O));
      wino_flip(g, plan.flipped.data(), geo.O, geo.C);
    }
    wino_filter(geo.flip ? plan.flipped.data() : g, static_cast<float*>(plain.get_data_handle()), geo.C, geo.O);
    if (plan.w_prim != plan.w_plain)
      plan.w_reorder.execute(s, plain, out);
    else
      std::memcpy(out.get_data_handle(), plain.get_data_handle(), plan.w_plain.get_size());
  };
  // Inference reads the same filters batch after batch: their transforms are kept per tensor.
  // Training has new filters every step, each read by one forward and one backward-data call:
  // the plan's own buffer is filled afresh (no allocation per step).
  if (weight_id > 0 && inference) return kept_copy(weight_id, g, geo.flip ? 2 : 1, plan.w_prim, fill);
  if (!plan.U) plan.U = memory(plan.w_prim, cpu_engine());
  fill(plan.U);
  return plan.U;
}

// y = act(conv(x, g) + bias), x and y NHWC, g the tfjs filter [3][3][C][O]; for backward data
// x is dy, y is dx and there is no bias (see WinoGeom).
void wino_conv(const std::string& key, const int32_t* p, const float* x, const float* g, const float* bias, float* y, double weight_id) {
  HoldSignals hold;
  FlushDenormals flush;
  g_wino_calls++;
  const WinoGeom geo = wino_geom(p);
  WinoPlan& plan = wino_plan(key, geo);
  stream& s = cpu_stream();
  const int64_t H = geo.H, W = geo.W, C = geo.C, O = geo.O, OH = geo.OH, OW = geo.OW, pt = geo.pt, pl = geo.pl;
  const int64_t th = (OH + 3) / 4, tw = (OW + 3) / 4, P = plan.chunk, width = std::max(C, O);
  const int act = geo.act;
  memory U = wino_weights(plan, geo, g, weight_id, p[P_OP] == 1, s);
  float* V = static_cast<float*>(plan.V.get_data_handle());
  float* M = static_cast<float*>(plan.M.get_data_handle());
  for (int64_t first = 0; first < plan.tiles; first += P) {
#pragma omp parallel
    {
      float* t = plan.scratch.data() + size_t(omp_get_thread_num()) * (kWinoTiles + 1) * width;
      const float* zeros = t + kWinoTiles * width;
#pragma omp for schedule(static)
      for (int64_t q = 0; q < P; q++) {
        const int64_t tile = first + q;
        if (tile >= plan.tiles) {
          for (int k = 0; k < kWinoTiles; k++) std::memset(V + (k * P + q) * C, 0, size_t(C) * 4);
          continue;
        }
        const int64_t n = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        const int64_t y0 = ty * 4 - pt, x0 = tx * 4 - pl;
        // Columns: t[i][j] = sum_r B^T[i][r] x[y0 + r][x0 + j] (outside the image: zeros).
        for (int j = 0; j < 6; j++) {
          const int64_t ix = x0 + j;
          const float* rows[6];
          float* outs[6];
          for (int r = 0; r < 6; r++) {
            const int64_t iy = y0 + r;
            rows[r] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x + ((n * H + iy) * W + ix) * C : zeros;
            outs[r] = t + (r * 6 + j) * C;
          }
          wino_in6(rows, outs, C);
        }
        // Rows: V[i][j] = sum_b t[i][b] B[b][j].
        for (int i = 0; i < 6; i++) {
          const float* in[6];
          float* outs[6];
          for (int b = 0; b < 6; b++) {
            in[b] = t + (i * 6 + b) * C;
            outs[b] = V + ((i * 6 + b) * P + q) * C;
          }
          wino_in6(in, outs, C);
        }
      }
    }
    plan.prim.execute(s, {{DNNL_ARG_SRC, plan.V}, {DNNL_ARG_WEIGHTS, U}, {DNNL_ARG_DST, plan.M}});
    s.wait();
    const int64_t last = std::min(P, plan.tiles - first);
#pragma omp parallel
    {
      float* t = plan.scratch.data() + size_t(omp_get_thread_num()) * (kWinoTiles + 1) * width;
      float* sink = t + 24 * O;  // outputs past the edge land here
#pragma omp for schedule(static)
      for (int64_t q = 0; q < last; q++) {
        const int64_t tile = first + q;
        const int64_t n = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
        // Columns: s[i][j] = sum_r A^T[i][r] M[r][j], then rows into the 4x4 outputs.
        for (int j = 0; j < 6; j++) {
          const float* in[6];
          float* outs[4];
          for (int r = 0; r < 6; r++) in[r] = M + ((r * 6 + j) * P + q) * O;
          for (int i = 0; i < 4; i++) outs[i] = t + (i * 6 + j) * O;
          wino_out6(in, outs, O);
        }
        for (int i = 0; i < 4; i++) {
          const int64_t oy = ty * 4 + i;
          const float* in[6];
          float* outs[4];
          for (int b = 0; b < 6; b++) in[b] = t + (i * 6 + b) * O;
          for (int jj = 0; jj < 4; jj++) {
            const int64_t ox = tx * 4 + jj;
            outs[jj] = oy < OH && ox < OW ? y + ((n * OH + oy) * OW + ox) * O : sink + jj * O;
          }
          wino_out6(in, outs, O);
          for (int jj = 0; jj < 4; jj++)
            if (oy < OH && tx * 4 + jj < OW) wino_bias_act(outs[jj], bias, O, act);
        }
      }
    }
  }
}
