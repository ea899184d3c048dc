// Softmax of each row of a (rows x n) matrix, in place: one workgroup of 256 per row reduces the row's max, then
// the sum of exp(x - max), then writes exp(x - max) / sum (the order torch.softmax uses). Masked entries
// (-3e38, see compute_scores_matmul.wgsl) become exactly 0. Rows run along workgroup x, then y past 65,535.
struct Params {
    rows: u32, n: u32, pad0: u32, pad1: u32,
}

const WIDTH: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

var<workgroup> scratch: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let row = wid.x + wid.y * groups.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.n;
    var local_max = -3.0e38;
    for (var j = lid.x; j < params.n; j += WIDTH) {
        local_max = max(local_max, x[base + j]);
    }
    scratch[lid.x] = local_max;
    workgroupBarrier();
    for (var half = WIDTH / 2u; half > 0u; half = half / 2u) {
        if (lid.x < half) {
            scratch[lid.x] = max(scratch[lid.x], scratch[lid.x + half]);
        }
        workgroupBarrier();
    }
    let row_max = scratch[0];
    workgroupBarrier();
    var local_sum = 0.0;
    for (var j = lid.x; j < params.n; j += WIDTH) {
        local_sum = local_sum + exp(x[base + j] - row_max);
    }
    scratch[lid.x] = local_sum;
    workgroupBarrier();
    for (var half = WIDTH / 2u; half > 0u; half = half / 2u) {
        if (lid.x < half) {
            scratch[lid.x] = scratch[lid.x] + scratch[lid.x + half];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    for (var j = lid.x; j < params.n; j += WIDTH) {
        x[base + j] = exp(x[base + j] - row_max) / total;
    }
}
