"""The trade-off plot: marker area follows artifact size, and labels of coinciding markers do not overprint."""

from compress_export.report.plots import label_offsets, marker_areas, plot_tradeoff


def test_marker_area_is_proportional_to_size():
    areas = marker_areas([90_000_000, 23_000_000, 45_000_000])
    assert areas[0] == max(areas)
    assert abs(areas[2] / areas[0] - 0.5) < 1e-9
    assert marker_areas([10, 10**9])[0] >= 30  # a tiny artifact stays visible
    assert marker_areas([0, 0]) == [30, 30]


def test_labels_of_coinciding_markers_are_stacked():
    offsets = label_offsets([(1.0, 0.99), (1.01, 0.991), (0.5, 0.9)])
    assert offsets[0] != offsets[1]
    assert offsets[2] == offsets[0]  # far away: the plain offset


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "tradeoff.png"
    points = [("FP32", 1.0, 1.0, 90_000_000), ("onnx-int8", 0.7, 0.992, 23_000_000), ("onnx", 1.0, 1.0, 90_000_000)]
    assert plot_tradeoff(points, "cosine", path, "32")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
