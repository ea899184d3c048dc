// Tiled online-softmax attention (the FlashAttention recurrence), never a queries x keys array: one invocation per
// query row takes the keys one tile of 16 at a time, and keeps a running max m, a running sum l of exp(s - m) and
// an accumulator of exp(s - m) . v, rescaled by exp(m_old - m_new) whenever a tile raises the max.
// Scores s = (q . k) * scale; key j is allowed for query row i when j <= i + offset (causal = 1) and, with
// window > 0, j > i + offset - window: each row visits only the tiles that hold its allowed keys. Writes
// out[i] = acc / l and stats[i] = (m, l), the row's largest score and its sum of exp(s - m), from which any
// probability is exp(s - m) / l. The head dimension is padded to a multiple of 4 (D4 vec4s a row, at most 32).
// The rows of a workgroup read the same keys, so the tiles come from cache; no workgroup memory or barriers (a
// software adapter such as lavapipe pays dearly for them). Heads run along y; rows from row_start to rows_end
// (a caller submits long sequences in chunks).
struct Params {
    queries: u32, keys: u32, d4: u32, causal: u32,
    offset: i32, window: u32, scale: f32, row_start: u32,
    rows_end: u32, pad0: u32, pad1: u32, pad2: u32,
}

const KEYS: u32 = 16u;
// The head dimension in vec4s, a constant so that a row's query and accumulator live in registers: the caller
// compiles one pipeline per head dimension, replacing this line's value (1 to 32). With a runtime size, lavapipe
// kept those arrays in scratch memory and gave wrong rows past about 1,700 queries of 2,048 (head dimension 64).
const D4: u32 = 16u;
const MASKED: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = params.row_start + gid.x;
    if (row >= params.rows_end) {
        return;
    }
    let d4 = D4;
    let head = gid.y;
    let q_base = (head * params.queries + row) * d4;
    let kv_base = head * params.keys * d4;

    var qv: array<vec4<f32>, D4>;
    var acc: array<vec4<f32>, D4>;
    for (var c = 0u; c < d4; c++) {
        qv[c] = q[q_base + c];
    }
    var m = MASKED;
    var l = 0.0;

    let last = i32(row) + params.offset;
    var hi = params.keys;
    var lo = 0u;
    if (params.causal == 1u) {
        hi = u32(clamp(last + 1, 0, i32(params.keys)));
        if (params.window > 0u) {
            lo = u32(max(0, last - i32(params.window) + 1));
        }
    }

    for (var t0 = lo - lo % KEYS; t0 < hi; t0 += KEYS) {
        var s: array<f32, 16>;
        var tile_max = MASKED;
        for (var j = 0u; j < KEYS; j++) {
            let key = t0 + j;
            var score = MASKED;
            if (key >= lo && key < hi) {
                let k_base = kv_base + key * d4;
                var dot_sum = 0.0;
                for (var c = 0u; c < d4; c++) {
                    dot_sum = dot_sum + dot(qv[c], k[k_base + c]);
                }
                score = dot_sum * params.scale;
            }
            s[j] = score;
            tile_max = max(tile_max, score);
        }
        let m_new = max(m, tile_max);
        let correction = exp(m - m_new);
        for (var c = 0u; c < d4; c++) {
            acc[c] = acc[c] * correction;
        }
        var tile_sum = 0.0;
        for (var j = 0u; j < KEYS; j++) {
            if (s[j] > MASKED) {
                let p = exp(s[j] - m_new);
                tile_sum = tile_sum + p;
                let v_base = kv_base + (t0 + j) * d4;
                for (var c = 0u; c < d4; c++) {
                    acc[c] = acc[c] + p * v[v_base + c];
                }
            }
        }
        l = l * correction + tile_sum;
        m = m_new;
    }
    for (var c = 0u; c < d4; c++) {
        out[q_base + c] = acc[c] / l;
    }
    stats[(head * params.queries + row) * 2u] = m;
    stats[(head * params.queries + row) * 2u + 1u] = l;
}
