// Instanced text (shaders/text.glsl's twin): one quad per glyph (GLYPH_LAYOUT in engine/render/backend.py),
// shaded from a signed-distance-field atlas with an edge width taken from fwidth, crisp at any zoom.

struct Glyph {
    @location(1) anchor: vec3<f32>,
    @location(2) offset: vec2<f32>,
    @location(3) size: vec2<f32>,
    @location(4) uv: vec4<f32>,
    @location(5) height: f32,
    @location(6) color: vec4<f32>,
    @location(7) billboard: f32,
};

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) @interpolate(flat) color: vec4<f32>,
};

@vertex
fn vs_main(@location(0) corner: vec2<f32>, g: Glyph) -> Varyings {
    var out: Varyings;
    let em = g.offset + corner * g.size;
    var axis_x = vec3<f32>(1.0, 0.0, 0.0);
    var axis_y = vec3<f32>(0.0, 1.0, 0.0);
    if (g.billboard > 0.5) {
        axis_x = frame.right.xyz;
        axis_y = frame.up.xyz;
    }
    let world = g.anchor + (axis_x * em.x + axis_y * em.y) * g.height;
    var p = frame.view_proj * vec4<f32>(world, 1.0);
    p.z -= frame.up.w * p.w;  // pulled towards the camera, so labels on faces win
    out.position = to_webgpu_clip(p);
    out.uv = mix(g.uv.xy, g.uv.zw, corner);
    out.color = g.color;
    return out;
}

@fragment
fn fs_main(v: Varyings) -> @location(0) vec4<f32> {
    let d = textureSample(glyphs, glyph_sampler, v.uv).r;
    let w = max(fwidth(d) * 0.7, 1e-4);
    let coverage = smoothstep(0.5 - w, 0.5 + w, d);
    if (coverage < 0.004) {
        discard;
    }
    return vec4<f32>(v.color.rgb, v.color.a * coverage);
}
