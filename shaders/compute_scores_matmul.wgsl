// Batched matrix product for attention, 16 x 16 tiles through workgroup memory:
//   C[b] = alpha * A[b] (m x k) . B[b] (k x n)        (b_transposed = 0: B stored k x n, as V in P.V)
//   C[b] = alpha * A[b] (m x k) . B[b]^T             (b_transposed = 1: B stored n x k, as K in Q.K^T / sqrt(d))
// With masked = 1, entries a causal (or sliding-window) mask forbids are written as MASKED: key column j is
// allowed for query row i when j <= i + offset (offset = keys - queries, so the last query sees every key) and,
// with window > 0, j > i + offset - window. Batches (heads) run along workgroup z.
struct Params {
    m: u32, n: u32, k: u32, b_transposed: u32,
    a_stride: u32, b_stride: u32, c_stride: u32, masked: u32,
    alpha: f32, offset: i32, window: u32, pad: u32,
}

// A stand-in for -infinity (WGSL has no infinite literal); exp(MASKED - max) is exactly 0 in float32.
const MASKED: f32 = -3.0e38;
const TILE: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> a_tile: array<array<f32, 16>, 16>;
var<workgroup> b_tile: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    let a_base = wid.z * params.a_stride;
    let b_base = wid.z * params.b_stride;
    var sum = 0.0;
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let ka = t * TILE + lid.x;
        var av = 0.0;
        if (row < params.m && ka < params.k) {
            av = a[a_base + row * params.k + ka];
        }
        a_tile[lid.y][lid.x] = av;
        let kb = t * TILE + lid.y;
        var bv = 0.0;
        if (col < params.n && kb < params.k) {
            if (params.b_transposed == 1u) {
                bv = b[b_base + col * params.k + kb];
            } else {
                bv = b[b_base + kb * params.n + col];
            }
        }
        b_tile[lid.y][lid.x] = bv;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            sum = sum + a_tile[lid.y][i] * b_tile[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.m && col < params.n) {
        var value = sum * params.alpha;
        if (params.masked == 1u) {
            let last = i32(row) + params.offset;
            var allowed = i32(col) <= last;
            if (params.window > 0u) {
                allowed = allowed && i32(col) > last - i32(params.window);
            }
            if (!allowed) {
                value = MASKED;
            }
        }
        c[wid.z * params.c_stride + row * params.n + col] = value;
    }
}
