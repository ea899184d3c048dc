// Clears one viewport of the target (colour and depth) with a full-viewport triangle: WebGPU's load op
// clears a whole attachment, and a compare frame clears each view's rectangle only, as GL's clear does.

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(corner * 2.0 - 1.0, 1.0, 1.0);
}

@fragment
fn fs_main() -> @location(0) vec4<f32> {
    return vec4<f32>(frame.fade.rgb, frame.origin.z);
}
