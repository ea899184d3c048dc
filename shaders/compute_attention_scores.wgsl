// Scores of attention, s = (q . k) * scale, each invocation a block of 4 queries x 4 keys (16 dot products from
// 8 vec4 reads a step: a software adapter such as lavapipe runs this far faster than one score per invocation or
// workgroup-memory tiles, whose barriers it pays for dearly). The head dimension is padded to a multiple of 4
// with zeros by the caller (zeros change no dot product). With causal = 1, key j is allowed for query i when
// j <= i + offset (offset = keys - queries) and, with window > 0, j > i + offset - window; a forbidden entry is
// written as MASKED, a stand-in for -infinity (WGSL has no infinite literal) whose exp(MASKED - max) is exactly 0.
// Heads run along z.
struct Params {
    queries: u32, keys: u32, d4: u32, causal: u32,
    offset: i32, window: u32, scale: f32, pad: u32,
}

const MASKED: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    if (row0 >= params.queries || col0 >= params.keys) {
        return;
    }
    let d4 = params.d4;
    var q_rows: array<u32, 4>;
    var k_rows: array<u32, 4>;
    for (var r = 0u; r < 4u; r++) {
        // past the last query or key: read the last one again, and write nothing for it
        q_rows[r] = (gid.z * params.queries + min(row0 + r, params.queries - 1u)) * d4;
        k_rows[r] = (gid.z * params.keys + min(col0 + r, params.keys - 1u)) * d4;
    }
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < d4; i++) {
        var qa: array<vec4<f32>, 4>;
        var kb: array<vec4<f32>, 4>;
        for (var r = 0u; r < 4u; r++) {
            qa[r] = q[q_rows[r] + i];
            kb[r] = k[k_rows[r] + i];
        }
        for (var r = 0u; r < 4u; r++) {
            for (var c = 0u; c < 4u; c++) {
                acc[r][c] = acc[r][c] + dot(qa[r], kb[c]);
            }
        }
    }
    for (var r = 0u; r < 4u; r++) {
        let row = row0 + r;
        if (row >= params.queries) {
            break;
        }
        let last = i32(row) + params.offset;
        for (var c = 0u; c < 4u; c++) {
            let col = col0 + c;
            if (col >= params.keys) {
                break;
            }
            var value = acc[r][c] * params.scale;
            if (params.causal == 1u) {
                var allowed = i32(col) <= last;
                if (params.window > 0u) {
                    allowed = allowed && i32(col) > last - i32(params.window);
                }
                if (!allowed) {
                    value = MASKED;
                }
            }
            s[(gid.z * params.queries + row) * params.keys + col] = value;
        }
    }
}
