"""Precinct outlines: the demo's synthetic cells, the live station-area layer through the test
server, and how the ingest keeps them in the lake."""
from __future__ import annotations

import numpy as np
from fake_sources import FakeServer
from fake_sources.rows import arcgis_attributes, arcgis_fields, station_areas_layer

from memphis_incidents.config import RunParameters, load_preset
from memphis_incidents.ingest import run_ingest
from memphis_incidents.precincts import fetch_outlines, load_outlines, precinct_of, synthetic_outlines
from memphis_incidents.profiles import backends_for
from memphis_incidents.schema import CITY_BOX
from memphis_incidents.sources.demo_world import vocabulary


def test_synthetic_outlines_put_each_demo_centre_in_its_own_precinct_and_cover_the_city_box():
    outlines = synthetic_outlines()
    precincts = vocabulary()["precincts"]
    centres = np.array([precincts[name]["centre"] for name in outlines.names])
    assert precinct_of(centres[:, 1], centres[:, 0], outlines).tolist() == outlines.names
    rng = np.random.default_rng(3)
    lat = rng.uniform(*CITY_BOX["lat"], 2000)
    lon = rng.uniform(*CITY_BOX["lon"], 2000)
    inside = precinct_of(lon, lat, outlines)
    assert (inside != "").mean() > 0.99 and outlines.synthetic
    assert precinct_of(np.array([-95.0]), np.array([35.1]), outlines).tolist() == [""]


def test_live_outlines_come_from_the_station_area_layer():
    with FakeServer() as server:
        rows, fields = station_areas_layer()
        url = server.add_arcgis(rows, fields, name="MPD_Station_Areas", edit_field=None, object_id="OBJECTID")
        outlines = fetch_outlines(url, (1.0, 1.0), 0)
    assert outlines.names == [row["prct_code"].upper() for row in rows] and not outlines.synthetic
    assert outlines.rings == [row["__geometry__"]["rings"] for row in rows]
    assert outlines.source.endswith("MPD_Station_Areas/FeatureServer/0")


def test_the_ingest_keeps_outlines_in_the_lake_and_keeps_the_old_ones_when_the_layer_fails(tmp_path):
    preset = load_preset("memphis-arcgis")
    with FakeServer() as server:
        incidents = server.add_arcgis(arcgis_attributes(preset, 10), arcgis_fields(preset))
        rows, fields = station_areas_layer()
        stations = server.add_arcgis(rows, fields, name="MPD_Station_Areas", edit_field=None, object_id="OBJECTID")
        run = RunParameters(data_dir=str(tmp_path), source="memphis-arcgis", base_url=incidents, run_id="r1",
                            precincts_url=stations, http_retries=0)
        stores = backends_for(run)
        assert run_ingest(run, stores)["source_warnings"] == []
        first = load_outlines(stores.lake.storage)
        assert len(first.names) == 9 and first.retrieved_at
        server.arcgis.pop("/arcgis/rest/services/MPD_Station_Areas/FeatureServer/0")
        again = RunParameters(**{**run.as_dict(), "run_id": "r2"})
        warnings = run_ingest(again, stores)["source_warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("precinct outlines could not be refreshed (")
    assert "was not found (404)" in warnings[0] and warnings[0].endswith(f"the map uses those retrieved {first.retrieved_at}")
    assert load_outlines(stores.lake.storage) == first


def test_the_demo_ingest_stores_synthetic_outlines(tmp_path):
    run = RunParameters(data_dir=str(tmp_path), demo_rows=500, run_id="d1")
    stores = backends_for(run)
    run_ingest(run, stores)
    assert load_outlines(stores.lake.storage).synthetic
