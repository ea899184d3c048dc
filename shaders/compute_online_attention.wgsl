// Tiled online-softmax attention (the FlashAttention recurrence), never a queries x keys array:
// one invocation per query row, 64 rows a workgroup; the workgroup reads one tile of 16 keys (and their values)
// at a time into workgroup memory, and each row keeps a running max m, a running sum l of exp(s - m) and an
// accumulator of exp(s - m) . v, rescaled by exp(m_old - m_new) whenever a tile raises the max.
// Scores s = (q . k) * scale; key j is allowed for query row i when j <= i + offset (causal = 1) and, with
// window > 0, j > i + offset - window. Writes out[i] = acc / l and stats[i] = (m, l), the row's max score and
// its sum of exp(s - m), from which any probability is exp(s - m) / l. Head dimension at most MAX_D.
// Heads run along workgroup y; rows from row_start (a caller submits long sequences in chunks).
struct Params {
    queries: u32, keys: u32, d: u32, causal: u32,
    offset: i32, window: u32, scale: f32, row_start: u32,
    q_stride: u32, kv_stride: u32, rows_end: u32, pad: u32,
}

const ROWS: u32 = 64u;
const KEYS: u32 = 16u;
const MAX_D: u32 = 128u;
const MASKED: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

var<workgroup> k_tile: array<f32, 2048>;  // KEYS * MAX_D
var<workgroup> v_tile: array<f32, 2048>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let d = params.d;
    let head = wid.y;
    let first_row = params.row_start + wid.x * ROWS;
    let end_row = min(first_row + ROWS, params.rows_end);
    let row = first_row + lid.x;
    let live = row < end_row;
    let q_base = head * params.q_stride + row * d;
    let kv_base = head * params.kv_stride;

    var qv: array<f32, 128>;
    var acc: array<f32, 128>;
    for (var c = 0u; c < d; c++) {
        var value = 0.0;
        if (live) {
            value = q[q_base + c];
        }
        qv[c] = value;
        acc[c] = 0.0;
    }
    var m = MASKED;
    var l = 0.0;

    // The keys any row of this workgroup may see (the same for all its invocations, so the barriers stay uniform).
    var hi = params.keys;
    if (params.causal == 1u) {
        hi = u32(clamp(i32(end_row) - 1 + params.offset + 1, 0, i32(params.keys)));
    }
    var lo = 0u;
    if (params.window > 0u) {
        lo = u32(max(0, i32(first_row) + params.offset - i32(params.window) + 1));
    }
    let my_last = i32(row) + params.offset;

    for (var t0 = lo - lo % KEYS; t0 < hi; t0 += KEYS) {
        for (var idx = lid.x; idx < KEYS * d; idx += ROWS) {
            let key = t0 + idx / d;
            var kv = 0.0;
            var vv = 0.0;
            if (key < params.keys) {
                kv = k[kv_base + key * d + idx % d];
                vv = v[kv_base + key * d + idx % d];
            }
            k_tile[idx] = kv;
            v_tile[idx] = vv;
        }
        workgroupBarrier();

        var s: array<f32, 16>;
        var tile_max = MASKED;
        for (var j = 0u; j < KEYS; j++) {
            let key = t0 + j;
            var allowed = live && key < params.keys;
            if (params.causal == 1u) {
                allowed = allowed && i32(key) <= my_last;
            }
            if (params.window > 0u) {
                allowed = allowed && i32(key) > my_last - i32(params.window);
            }
            var score = MASKED;
            if (allowed) {
                var dot = 0.0;
                for (var c = 0u; c < d; c++) {
                    dot = dot + qv[c] * k_tile[j * d + c];
                }
                score = dot * params.scale;
            }
            s[j] = score;
            tile_max = max(tile_max, score);
        }
        if (tile_max > MASKED) {
            let m_new = max(m, tile_max);
            let correction = exp(m - m_new);
            var tile_sum = 0.0;
            for (var c = 0u; c < d; c++) {
                acc[c] = acc[c] * correction;
            }
            for (var j = 0u; j < KEYS; j++) {
                if (s[j] > MASKED) {
                    let p = exp(s[j] - m_new);
                    tile_sum = tile_sum + p;
                    for (var c = 0u; c < d; c++) {
                        acc[c] = acc[c] + p * v_tile[j * d + c];
                    }
                }
            }
            l = l * correction + tile_sum;
            m = m_new;
        }
        workgroupBarrier();
    }
    if (live) {
        let o_base = head * params.q_stride + row * d;
        for (var c = 0u; c < d; c++) {
            out[o_base + c] = acc[c] / l;
        }
        let s_base = (head * params.queries + row) * 2u;
        stats[s_base] = m;
        stats[s_base + 1u] = l;
    }
}
