// Output of attention, out = P . V, each invocation 4 query rows x 4 output columns (one vec4 of V a key, times the
// 4 rows' probabilities). Keys a row may not see have probability 0 and are skipped: with causal = 1 the loop
// stops after key (last row) + offset and, with window > 0, starts at (first row) + offset - window + 1. The head
// dimension is padded to a multiple of 4 (d4 vec4s a row). Heads run along z.
struct Params {
    queries: u32, keys: u32, d4: u32, causal: u32,
    offset: i32, window: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col4 = gid.x;
    let row0 = gid.y * 4u;
    if (row0 >= params.queries || col4 >= params.d4) {
        return;
    }
    let rows = min(4u, params.queries - row0);
    var lo = 0i;
    var hi = i32(params.keys);
    if (params.causal == 1u) {
        hi = min(hi, i32(row0 + rows - 1u) + params.offset + 1);
        if (params.window > 0u) {
            lo = max(0, i32(row0) + params.offset - i32(params.window) + 1);
        }
    }
    var p_rows: array<u32, 4>;
    for (var r = 0u; r < 4u; r++) {
        p_rows[r] = (gid.z * params.queries + min(row0 + r, params.queries - 1u)) * params.keys;
    }
    let v_base = gid.z * params.keys * params.d4 + col4;
    var acc: array<vec4<f32>, 4>;
    for (var j = u32(lo); j < u32(hi); j++) {
        let vv = v[v_base + j * params.d4];
        for (var r = 0u; r < 4u; r++) {
            acc[r] = acc[r] + p[p_rows[r] + j] * vv;
        }
    }
    for (var r = 0u; r < rows; r++) {
        out[(gid.z * params.queries + row0 + r) * params.d4 + col4] = acc[r];
    }
}
