// A tensor box (shaders/box.glsl's twin). fs_detail (LOD 0): the +z/-z faces show the data region as
// colour-mapped cells with grid lines that fade with density, and every face has a crisp edge outline.
// fs_flat (LOD 1): flat, shaded instance colour only.

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) local: vec3<f32>,
    @location(1) @interpolate(flat) local_normal: vec3<f32>,
    @location(2) @interpolate(flat) shade: f32,
    @location(3) @interpolate(flat) color: vec4<f32>,
    @location(4) @interpolate(flat) region: vec4<f32>,
    @location(5) @interpolate(flat) range: vec2<f32>,
    @location(6) @interpolate(flat) colormap: i32,
    @location(7) @interpolate(flat) flags: i32,
};

@vertex
fn vs_main(@location(0) position: vec3<f32>, @location(1) normal: vec3<f32>, inst: Instance) -> Varyings {
    var out: Varyings;
    let world = inst.center + quat_rotate(inst.rotation, position * inst.size);
    out.position = to_webgpu_clip(frame.view_proj * vec4<f32>(world, 1.0));
    out.local = position;
    out.local_normal = normal;
    out.shade = face_shade(view_rotation() * quat_rotate(inst.rotation, normal));
    out.color = inst.color;
    out.region = inst.region;
    out.range = inst.range;
    out.colormap = i32(inst.colormap + 0.5);
    out.flags = i32(inst.flags + 0.5);
    return out;
}

const MASK_STRIPE_PX: f32 = 8.0;

@fragment
fn fs_detail(v: Varyings) -> @location(0) vec4<f32> {
    let ratio = frame.right.w;
    var rgb = v.color.rgb * v.shade;
    let highlighted = (v.flags & FLAG_HIGHLIGHTED) != 0;
    let n = v.local_normal;
    // Derivatives first, in uniform control flow (WGSL requires it), as box.glsl takes them before any branch.
    var face = v.local.xy;
    if (abs(n.x) > 0.5) {
        face = v.local.yz;
    } else if (abs(n.y) > 0.5) {
        face = v.local.xz;
    }
    let face_fw = max(fwidth(face) * ratio, vec2<f32>(1e-7));
    let dims = max(v.region.zw, vec2<f32>(1.0));
    let cell = vec2<f32>(v.local.x + 0.5, 0.5 - v.local.y) * dims;  // (column, row), continuous
    let cell_fw = max(fwidth(cell) * ratio, vec2<f32>(1e-7));

    let data_face = abs(n.z) > 0.5 && v.region.z > 0.5;
    if (data_face) {
        let index = clamp(vec2<i32>(floor(cell)), vec2<i32>(0), vec2<i32>(dims) - 1);
        let texel = vec2<i32>(v.region.xy + 0.5) + index;
        let value = textureLoad(data_atlas, texel, 0).r;
        if (is_inf(value)) {
            // The causal mask's -inf: dark diagonal hatching in screen pixels (GL's bottom-left convention).
            let frag_gl = vec2<f32>(v.position.x, frame.fade.w - v.position.y);
            let screen_px = (frag_gl + frame.origin.xy) / ratio;
            let stripe = step(0.5, fract((screen_px.x - screen_px.y) / MASK_STRIPE_PX));
            rgb = mix(vec3<f32>(0.05, 0.05, 0.07), vec3<f32>(0.27, 0.27, 0.32), stripe);
        } else {
            rgb = colormap(value, v.range, v.colormap);
        }
        let marked = textureLoad(highlight_atlas, texel, 0).r > 0.5;
        let line_px = abs(cell - round(cell)) / cell_fw;
        let cell_px = 1.0 / max(cell_fw.x, cell_fw.y);
        let density_fade = smoothstep(3.0, 8.0, cell_px);
        let line = (1.0 - smoothstep(0.5, 1.0, min(line_px.x, line_px.y))) * density_fade;
        rgb = mix(rgb, rgb * 0.55, line);
        if (marked) {
            let inner = min(cell - floor(cell), ceil(cell) - cell) / cell_fw;
            let frame_w = 1.0 - smoothstep(1.5, 2.5, min(inner.x, inner.y));
            rgb = mix(rgb, vec3<f32>(1.0, 0.78, 0.2), max(frame_w, 0.18));
        }
    } else if (highlighted) {
        rgb = mix(rgb, vec3<f32>(1.0), 0.3);
    }
    let edge_px = (0.5 - abs(face)) / face_fw;
    let edge = min(edge_px.x, edge_px.y);
    var width = 1.0;
    var outline_rgb = v.color.rgb * 0.35;
    if (highlighted) {
        width = 2.5;
        outline_rgb = vec3<f32>(1.0, 0.82, 0.25);
    }
    let outline = 1.0 - smoothstep(width - 0.5, width + 0.5, edge);
    rgb = mix(rgb, outline_rgb, outline);
    return style(rgb, v.color.a, v.flags & ~FLAG_HIGHLIGHTED);
}

@fragment
fn fs_flat(v: Varyings) -> @location(0) vec4<f32> {
    return style(v.color.rgb * v.shade, v.color.a, v.flags);
}
