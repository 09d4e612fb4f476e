"""The notebook tutorial (examples/tutorial.ipynb) runs in a real Jupyter kernel, and its
results display as HTML tables, never as dumps of their arrays."""

import os
import pathlib

import pytest

pytestmark = pytest.mark.slow  # a real Jupyter kernel

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the test extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the test extra")

NOTEBOOK = pathlib.Path(__file__).parent.parent / "examples" / "tutorial.ipynb"


def test_tutorial_notebook_shows_html_tables(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    outputs = [c.outputs for c in nb.cells if c.cell_type == "code"]
    assert all(o["output_type"] != "error" for cell in outputs for o in cell)
    bundle, res, best, bt, stats, equity, heatmap, report = outputs

    def data_of(cell):
        (result,) = [o for o in cell if o["output_type"] == "execute_result"]
        return result["data"]

    # the bar, drawn in the notebook: tqdm's widget (ipywidgets) or its text on stderr
    widget = [o for o in res if o["output_type"] == "display_data"
              and "application/vnd.jupyter.widget-view+json" in o["data"]]
    text = "".join(o.get("text", "") for o in res if o["output_type"] == "stream")
    assert (widget and "backtests" in widget[0]["data"]["text/plain"]) or (
        "backtests" in text and "100%" in text), res
    for cell, name in ((res, "SweepResult"), (bt, "BacktestResult")):
        data = data_of(cell)
        assert f"<b>{name}</b>" in data["text/html"]
        assert '<table class="sweepbt">' in data["text/html"]
        assert len(data["text/plain"]) < 300 and data["text/plain"].startswith(f"<{name}")
    for cell, rows in ((best, 5), (stats, 3)):  # pyarrow tables, drawn by sweepbt
        html = data_of(cell)["text/html"]
        assert html.startswith(f"<div><small>pyarrow.Table: {rows} rows x ")
        assert '<table class="sweepbt">' in html and html.count("<tr>") == rows + 1
    assert "<th>rank</th><th>combo</th><th>fast</th>" in data_of(best)["text/html"]
    assert "<th>symbol</th><th>total_return</th>" in data_of(stats)["text/html"]
    assert "<table" in data_of(equity)["text/html"]  # pandas' own
    assert "image/png" in data_of(heatmap)
    assert data_of(report)["text/plain"].strip("'") == "backtest_report.html"
    assert (tmp_path / "backtest_report.html").read_text().count("<svg") >= 4
