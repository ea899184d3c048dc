#version 330 core
// Instanced text: one quad per glyph (GLYPH_LAYOUT in engine/render/backend.py), shaded from
// a signed-distance-field atlas with an edge width taken from fwidth, crisp at any zoom.

#if defined VERTEX_SHADER

uniform mat4 u_view_proj;
uniform vec3 u_camera_right;
uniform vec3 u_camera_up;
uniform float u_depth_bias;  // clip-space pull towards the camera, so labels on faces win

in vec2 in_corner;  // (0, 0) .. (1, 1)
in vec3 g_anchor;
in vec2 g_offset;
in vec2 g_size;
in vec4 g_uv;
in float g_height;
in vec4 g_color;
in float g_billboard;

out vec2 v_uv;
flat out vec4 v_color;

void main() {
    vec2 em = g_offset + in_corner * g_size;
    // Billboards face the camera; the others lie in the world XY plane, facing +z.
    bool billboard = g_billboard > 0.5;
    vec3 axis_x = billboard ? u_camera_right : vec3(1.0, 0.0, 0.0);
    vec3 axis_y = billboard ? u_camera_up : vec3(0.0, 1.0, 0.0);
    vec3 world = g_anchor + (axis_x * em.x + axis_y * em.y) * g_height;
    gl_Position = u_view_proj * vec4(world, 1.0);
    gl_Position.z -= u_depth_bias * gl_Position.w;
    v_uv = mix(g_uv.xy, g_uv.zw, in_corner);
    v_color = g_color;
}

#elif defined FRAGMENT_SHADER

uniform sampler2D u_glyphs;  // R8: 0.5 on the outline, larger inside

in vec2 v_uv;
flat in vec4 v_color;

out vec4 f_color;

void main() {
    float d = texture(u_glyphs, v_uv).r;
    float w = max(fwidth(d) * 0.7, 1e-4);
    float coverage = smoothstep(0.5 - w, 0.5 + w, d);
    if (coverage < 0.004) {
        discard;
    }
    f_color = vec4(v_color.rgb, v_color.a * coverage);
}
#endif
