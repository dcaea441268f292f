const a = require("./native/build/Release/utkface_onednn.node");
a.setThreads(Number(process.env.T || 1)); a.setBlocked(process.env.L !== "nhwc");
const layers = [[70,1,32],[35,32,64],[17,64,128],[8,128,256],[4,256,512]];
const heap = new Uint8Array(64 << 20); const f = new Float32Array(heap.buffer); for (let i = 0; i < f.length; i += 7) f[i] = Math.random();
let tot = [0,0,0];
for (const [S, C, O] of layers) {
  const res = [];
  for (const op of [0, 2, 3]) {
    if (op === 2 && C === 1) { res.push(0); continue; }
    const p = new Int32Array([op, 25, S, S, C, O, 3, 3, S, S, 1, 1, 1, 1, 1, 1, 1, 1, 1, op === 0 ? 1 : 0, op === 0 ? 1 : 0]);
    const xs = 25*S*S*C*4, ys = 25*S*S*O*4, ws = 9*C*O*4;
    const args = op === 0 ? [0, xs, xs + ws, xs + ws + O*4] : op === 2 ? [xs + ws + O*4, xs, 0, 0] : [0, xs + ws + O*4, 0, xs];
    a.conv(heap, p, ...args, 0);
    let best = 1e9; for (let r = 0; r < 5; r++) { const t0 = performance.now(); a.conv(heap, p, ...args, 0); best = Math.min(best, performance.now() - t0); }
    res.push(best);
  }
  res.forEach((v, i) => tot[i] += v);
  console.log(S, C, O, res.map(v => v.toFixed(2)).join(" "));
}
console.log("total fwd/bwdData/bwdW", tot.map(v => v.toFixed(1)).join(" "), "sum", (tot[0]+tot[1]+tot[2]).toFixed(1));
