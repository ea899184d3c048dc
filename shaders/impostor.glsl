#version 330 core
// LOD 2 of box-like meshes: a camera-facing quad covering the box's silhouette, flat colour.

#include "common.glsl"

#if defined VERTEX_SHADER

uniform mat4 u_view_proj;
uniform vec3 u_camera_right;
uniform vec3 u_camera_up;

in vec3 in_position;  // quad corner in [-0.5, 0.5]^2

flat out vec4 v_color;
flat out int v_flags;

void main() {
    Instance inst = load_instance();
    // Half extents of the box projected on the camera's right and up axes.
    vec3 ax = quat_rotate(inst.rotation, vec3(inst.size.x, 0.0, 0.0));
    vec3 ay = quat_rotate(inst.rotation, vec3(0.0, inst.size.y, 0.0));
    vec3 az = quat_rotate(inst.rotation, vec3(0.0, 0.0, inst.size.z));
    float w = abs(dot(ax, u_camera_right)) + abs(dot(ay, u_camera_right)) + abs(dot(az, u_camera_right));
    float h = abs(dot(ax, u_camera_up)) + abs(dot(ay, u_camera_up)) + abs(dot(az, u_camera_up));
    vec3 world = inst.center + u_camera_right * (in_position.x * w) + u_camera_up * (in_position.y * h);
    gl_Position = u_view_proj * vec4(world, 1.0);
    v_color = vec4(inst.color.rgb * 0.9, inst.color.a);  // about the mean of the lit faces
    v_flags = inst.flags;
}

#elif defined FRAGMENT_SHADER

flat in vec4 v_color;
flat in int v_flags;

out vec4 f_color;

void main() {
    f_color = style(v_color.rgb, v_color.a, v_flags);
}
#endif
