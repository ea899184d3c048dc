// LOD 2 of box-like meshes (shaders/impostor.glsl's twin): a camera-facing quad covering the box's
// silhouette, flat colour.

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) @interpolate(flat) color: vec4<f32>,
    @location(1) @interpolate(flat) flags: i32,
};

@vertex
fn vs_main(@location(0) position: vec3<f32>, @location(1) normal: vec3<f32>, inst: Instance) -> Varyings {
    var out: Varyings;
    let right = frame.right.xyz;
    let up = frame.up.xyz;
    let ax = quat_rotate(inst.rotation, vec3<f32>(inst.size.x, 0.0, 0.0));
    let ay = quat_rotate(inst.rotation, vec3<f32>(0.0, inst.size.y, 0.0));
    let az = quat_rotate(inst.rotation, vec3<f32>(0.0, 0.0, inst.size.z));
    let w = abs(dot(ax, right)) + abs(dot(ay, right)) + abs(dot(az, right));
    let h = abs(dot(ax, up)) + abs(dot(ay, up)) + abs(dot(az, up));
    let world = inst.center + right * (position.x * w) + up * (position.y * h);
    out.position = to_webgpu_clip(frame.view_proj * vec4<f32>(world, 1.0));
    out.color = vec4<f32>(inst.color.rgb * 0.9, inst.color.a);  // about the mean of the lit faces
    out.flags = i32(inst.flags + 0.5);
    return out;
}

@fragment
fn fs_main(v: Varyings) -> @location(0) vec4<f32> {
    return style(v.color.rgb, v.color.a, v.flags);
}
