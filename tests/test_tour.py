"""The tour: a path through the whole model from the layout, flown through the rig, ended by steering."""
import numpy as np

from llmviz.engine.camera_control import CameraRig
from llmviz.engine.input import Actions
from llmviz.scenes.registry import build_scene
from llmviz.scenes.tour import Tour, tour_stops


def test_tour_visits_overview_every_block_and_output():
    scene = build_scene("nano-gpt")
    try:
        layout = scene.model.layout
        camera = scene.start_camera((1280, 720))
        stops = [name for name, _, _ in tour_stops(layout, camera)]
        assert stops[0] == "overview" and stops[-1] == "overview" and "output" in stops
        assert [s for s in stops if s.startswith("Transformer")] == ["Transformer 0", "Transformer 1", "Transformer 2"]

        rig = CameraRig(camera, scene_radius=50.0)
        tour = Tour(rig, layout, dwell=0.2, leg_seconds=0.5)
        tour.start()
        visited, positions = [], []
        for _ in range(2000):
            rig.update(1 / 30, Actions())
            tour.update(1 / 30)
            if not visited or visited[-1] != tour.stop_name:
                visited.append(tour.stop_name)
            positions.append(camera.position.copy())
            if not tour.playing:
                break
        assert not tour.playing and visited[:-1] == stops
        # Smooth: no frame jumps more than a small share of the scene.
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        assert steps.max() < 0.2 * np.linalg.norm(np.ptp(positions, axis=0))

        tour.start()
        rig.update(1 / 30, Actions(values={"move_forward": 1.0}))
        tour.update(1 / 30, steering=True)
        assert not tour.playing  # the user took the controls
    finally:
        scene.close()
