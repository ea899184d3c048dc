// Softmax of each row of a (rows x n) matrix of scores, in place, one invocation per row: the row's max, then the
// sum of exp(x - max), then exp(x - max) / sum (the order torch.softmax uses). MASKED entries (see
// compute_attention_scores.wgsl) become exactly 0. No workgroup memory or barriers (costly on software adapters).
// Rows run along x, then y past 65,535 workgroups.
struct Params {
    rows: u32, n: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = gid.x + gid.y * groups.x * 64u;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.n;
    var row_max = -3.0e38;
    for (var j = 0u; j < params.n; j++) {
        row_max = max(row_max, x[base + j]);
    }
    var total = 0.0;
    for (var j = 0u; j < params.n; j++) {
        total = total + exp(x[base + j] - row_max);
    }
    for (var j = 0u; j < params.n; j++) {
        x[base + j] = exp(x[base + j] - row_max) / total;
    }
}
