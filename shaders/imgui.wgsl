// Dear ImGui's draw lists on the wgpu backend: the same maths as moderngl-window's ImGui program (an
// orthographic projection of UI pixels, vertex colour times the texture), blended "over".

struct Ui {
    projection: mat4x4<f32>,
};

@group(0) @binding(0) var<uniform> ui: Ui;
@group(1) @binding(0) var ui_texture: texture_2d<f32>;
@group(1) @binding(1) var ui_sampler: sampler;

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) color: vec4<f32>,
};

@vertex
fn vs_main(@location(0) position: vec2<f32>, @location(1) uv: vec2<f32>, @location(2) color: vec4<f32>) -> Varyings {
    var out: Varyings;
    out.position = ui.projection * vec4<f32>(position, 0.0, 1.0);
    out.uv = uv;
    out.color = color;
    return out;
}

@fragment
fn fs_main(v: Varyings) -> @location(0) vec4<f32> {
    return v.color * textureSample(ui_texture, ui_sampler, v.uv);
}
