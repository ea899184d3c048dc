#version 330 core
// A tensor box. With DETAIL (LOD 0): the +z/-z faces show its data region as colour-mapped
// cells with grid lines that fade with density, and every face has a crisp edge outline.
// Without (LOD 1): flat, shaded instance colour only.

#include "common.glsl"

#if defined VERTEX_SHADER

uniform mat4 u_view_proj;
uniform mat3 u_view_rotation;  // world -> view, for camera-relative shading

in vec3 in_position;
in vec3 in_normal;

out vec3 v_local;               // position inside the unit cube: face coordinates, edges
flat out vec3 v_local_normal;
flat out float v_shade;
flat out vec4 v_color;
flat out vec4 v_region;
flat out vec2 v_range;
flat out int v_colormap;
flat out int v_flags;

void main() {
    Instance inst = load_instance();
    vec3 world = inst.center + quat_rotate(inst.rotation, in_position * inst.size);
    gl_Position = u_view_proj * vec4(world, 1.0);
    v_local = in_position;
    v_local_normal = in_normal;
    v_shade = face_shade(u_view_rotation * quat_rotate(inst.rotation, in_normal));
    v_color = inst.color;
    v_region = inst.region;
    v_range = inst.range;
    v_colormap = inst.colormap;
    v_flags = inst.flags;
}

#elif defined FRAGMENT_SHADER

const float MASK_STRIPE_PX = 8.0;  // one dark and one light diagonal stripe
// Target pixels per layout pixel (a picture larger than its view): every width below is in layout
// pixels, so a 7680x4320 picture of a 1280x720 view shows the same lines, six target pixels wide.
uniform float u_pixel_ratio = 1.0;
uniform vec2 u_frag_origin = vec2(0.0);  // this target's pixel (0, 0) in the whole picture (a tile's origin)
uniform sampler2D u_atlas;  // R32F data atlas, read with texelFetch: exact cells, no filtering
uniform sampler2D u_highlight;  // R8 mask beside the atlas: cells marked here are drawn highlighted

in vec3 v_local;
flat in vec3 v_local_normal;
flat in float v_shade;
flat in vec4 v_color;
flat in vec4 v_region;
flat in vec2 v_range;
flat in int v_colormap;
flat in int v_flags;

out vec4 f_color;

void main() {
    vec3 rgb = v_color.rgb * v_shade;
    bool highlighted = (v_flags & FLAG_HIGHLIGHTED) != 0;
#if defined DETAIL
    vec3 n = v_local_normal;
    // Derivatives are taken before any branch so they are defined on every fragment.
    vec2 face = abs(n.x) > 0.5 ? v_local.yz : (abs(n.y) > 0.5 ? v_local.xz : v_local.xy);
    vec2 face_fw = max(fwidth(face) * u_pixel_ratio, vec2(1e-7));
    // Face coordinates of the data faces: u left->right along +x, v top->bottom along -y.
    vec2 dims = max(v_region.zw, vec2(1.0));
    vec2 cell = vec2(v_local.x + 0.5, 0.5 - v_local.y) * dims;  // (column, row), continuous
    vec2 cell_fw = max(fwidth(cell) * u_pixel_ratio, vec2(1e-7));

    bool data_face = abs(n.z) > 0.5 && v_region.z > 0.5;
    if (data_face) {
        ivec2 index = clamp(ivec2(floor(cell)), ivec2(0), ivec2(dims) - 1);
        float value = texelFetch(u_atlas, ivec2(v_region.xy + 0.5) + index, 0).r;
        if (isinf(value)) {
            // The causal mask's -inf: dark diagonal hatching, so "removed" reads differently from "small".
            // Striped in screen pixels, not cells: a 264 x 264 mask seen whole still shows its hatch.
            vec2 screen_px = (gl_FragCoord.xy + u_frag_origin) / u_pixel_ratio;
            float stripe = step(0.5, fract((screen_px.x - screen_px.y) / MASK_STRIPE_PX));
            rgb = mix(vec3(0.05, 0.05, 0.07), vec3(0.27, 0.27, 0.32), stripe);
        } else {
            rgb = colormap(value, v_range, v_colormap);  // unlit: the map's colour, undistorted
        }
        bool marked = texelFetch(u_highlight, ivec2(v_region.xy + 0.5) + index, 0).r > 0.5;
        // Grid lines one pixel wide, faded out when cells get smaller than a few pixels.
        vec2 line_px = abs(cell - round(cell)) / cell_fw;
        float cell_px = 1.0 / max(cell_fw.x, cell_fw.y);
        float density_fade = smoothstep(3.0, 8.0, cell_px);
        float line = (1.0 - smoothstep(0.5, 1.0, min(line_px.x, line_px.y))) * density_fade;
        rgb = mix(rgb, rgb * 0.55, line);
        if (marked) {
            // A source cell of what is hovered: a warm frame around the cell, its colour kept inside.
            vec2 inner = min(cell - floor(cell), ceil(cell) - cell) / cell_fw;
            float frame = 1.0 - smoothstep(1.5, 2.5, min(inner.x, inner.y));
            rgb = mix(rgb, vec3(1.0, 0.78, 0.2), max(frame, 0.18));
        }
    } else if (highlighted) {
        // Data cells keep their exact colours; elsewhere a highlight brightens, and the outline shows it on all.
        rgb = mix(rgb, vec3(1.0), 0.3);
    }
    // Edge outline, measured in pixels so it stays crisp at any distance.
    vec2 edge_px = (0.5 - abs(face)) / face_fw;
    float edge = min(edge_px.x, edge_px.y);
    float width = highlighted ? 2.5 : 1.0;
    float outline = 1.0 - smoothstep(width - 0.5, width + 0.5, edge);
    vec3 outline_rgb = highlighted ? vec3(1.0, 0.82, 0.25) : v_color.rgb * 0.35;
    rgb = mix(rgb, outline_rgb, outline);
    f_color = style(rgb, v_color.a, v_flags & ~FLAG_HIGHLIGHTED);
#else
    f_color = style(rgb, v_color.a, v_flags);
#endif
}
#endif
