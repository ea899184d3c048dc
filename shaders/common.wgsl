// Shared by the wgpu backend's programs (engine/render/wgpu_backend.py prepends it, with the colour-map
// constants): the frame's uniforms and bindings, the per-instance data (INSTANCE_LAYOUT in
// engine/render/backend.py), quaternion rotation, lighting, flag styling and the colour-map lookup. The
// same maths as shaders/common.glsl, so both backends draw the same pixels.

struct Frame {
    view_proj: mat4x4<f32>,
    rot0: vec4<f32>,        // columns of the world -> view rotation
    rot1: vec4<f32>,
    rot2: vec4<f32>,
    right: vec4<f32>,       // camera right; w: target pixels per layout pixel
    up: vec4<f32>,          // camera up; w: the labels' clip-space depth bias
    fade: vec4<f32>,        // the frame's background (dimmed things fade to it); w: target height in pixels
    origin: vec4<f32>,      // xy: this target's pixel (0, 0) in the whole picture, GL convention (bottom left)
};

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var data_atlas: texture_2d<f32>;      // R32F, read with textureLoad: exact cells
@group(0) @binding(2) var highlight_atlas: texture_2d<f32>; // R8 mask beside the atlas, texel for texel
@group(0) @binding(3) var colormaps: texture_2d<f32>;       // RGBA32F, COLORMAP_SIZE x maps
@group(0) @binding(4) var glyphs: texture_2d<f32>;          // R8 signed-distance field
@group(0) @binding(5) var glyph_sampler: sampler;

const FLAG_HIGHLIGHTED: i32 = 1;
const FLAG_DIMMED: i32 = 2;

struct Instance {
    @location(2) center: vec3<f32>,
    @location(3) size: vec3<f32>,
    @location(4) rotation: vec4<f32>,
    @location(5) color: vec4<f32>,
    @location(6) region: vec4<f32>,
    @location(7) range: vec2<f32>,
    @location(8) colormap: f32,
    @location(9) flags: f32,
};

// GL's clip space has z in [-w, w], WebGPU's in [0, w]: the same depth order, the same pixels.
fn to_webgpu_clip(p: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(p.x, p.y, 0.5 * (p.z + p.w), p.w);
}

fn quat_rotate(q: vec4<f32>, v: vec3<f32>) -> vec3<f32> {
    let t = 2.0 * cross(q.xyz, v);
    return v + q.w * t + cross(q.xyz, t);
}

const KEY_LIGHT = vec3<f32>(-0.35, 0.6, 0.72);
const AMBIENT: f32 = 0.45;
const DIFFUSE: f32 = 0.55;

fn face_shade(view_normal: vec3<f32>) -> f32 {
    let l = normalize(KEY_LIGHT);
    let lit = AMBIENT + DIFFUSE * max(dot(view_normal, l), 0.0);
    return min(lit / (AMBIENT + DIFFUSE * l.z), 1.0);
}

fn view_rotation() -> mat3x3<f32> {
    return mat3x3<f32>(frame.rot0.xyz, frame.rot1.xyz, frame.rot2.xyz);
}

fn style(rgb_in: vec3<f32>, alpha_in: f32, flags: i32) -> vec4<f32> {
    var rgb = rgb_in;
    var alpha = alpha_in;
    if ((flags & FLAG_HIGHLIGHTED) != 0) {
        rgb = mix(rgb, vec3<f32>(1.0), 0.3);
    }
    if ((flags & FLAG_DIMMED) != 0) {
        let luma = dot(rgb, vec3<f32>(0.299, 0.587, 0.114));
        rgb = mix(mix(rgb, vec3<f32>(luma), 0.85), frame.fade.rgb, 0.55);
        alpha *= 0.4;
    }
    return vec4<f32>(rgb, alpha);
}

// WGSL has no isnan/isinf (and compilers may assume neither occurs): the bits say.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) == 0x7f800000u;
}

fn colormap(value: f32, range: vec2<f32>, map: i32) -> vec3<f32> {
    if (is_nan(value)) {
        return vec3<f32>(0.16, 0.16, 0.19);  // colormaps.NAN_RGB: an empty cell
    }
    if (map == COLORMAP_RGB) {  // a packed 24-bit colour (colormaps.pack_rgb): a picture's pixel
        let bits = i32(value + 0.5);
        return vec3<f32>(f32((bits >> 16u) & 255), f32((bits >> 8u) & 255), f32(bits & 255)) / 255.0;
    }
    let span = range.y - range.x;
    var t = 0.5;
    if (span != 0.0) {
        t = clamp((value - range.x) / span, 0.0, 1.0);
    }
    let x = t * f32(COLORMAP_SIZE - 1);
    let i0 = min(i32(floor(x)), COLORMAP_SIZE - 2);
    let f = x - f32(i0);
    let a = textureLoad(colormaps, vec2<i32>(i0, map), 0).rgb;
    let b = textureLoad(colormaps, vec2<i32>(i0 + 1, map), 0).rgb;
    return mix(a, b, f);
}
