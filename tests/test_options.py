"""Options and defaults in one place (facelandmarks.pipeline.options): the CLI's, the page's URL
parameters, the tracker's and the smoother's."""
from __future__ import annotations

import pytest

from facelandmarks.__main__ import build_parser
from facelandmarks.pipeline.options import OneEuroOptions, PageOptions, PipelineOptions, TrackerOptions


def test_cli_defaults_are_the_stills_options():
    args = build_parser().parse_args(["detect", "x.jpg", "--json", "o.json"])
    stills = PipelineOptions.for_stills()
    assert (args.passes, args.min_face, not args.no_flip) == (stills.passes, stills.min_face,
                                                              stills.flip_average)


@pytest.mark.parametrize("query,want", [
    ({}, dict(camera=True, threads=None, models=None, providers={}, redetect_every=30, max_faces=4,
              smoothing=True)),
    ({"redetect": "5", "faces": "1", "smooth": "0", "camera": "0", "threads": "3"},
     dict(camera=False, threads=3, redetect_every=5, max_faces=1, smoothing=False)),
    ({"detector": "wasm", "landmarks": "webgl", "models": "seed"},
     dict(providers={"detector": "wasm", "landmarks": "webgl"}, models="seed")),
])
def test_page_options_from_url(query, want):
    o = PageOptions.from_url(query.get)
    for name, value in want.items():
        assert getattr(o.tracker if hasattr(o.tracker, name) else o, name) == value, name


@pytest.mark.parametrize("query,name", [({"redetect": "often"}, "redetect"), ({"threads": "2.5"}, "threads")])
def test_page_options_bad_value_names_the_parameter(query, name):
    with pytest.raises(ValueError, match=name):
        PageOptions.from_url(query.get)


def test_overrides_and_validation():
    assert PipelineOptions.for_stills(passes=3).passes == 3
    assert PipelineOptions.for_camera().detector == "camera"
    with pytest.raises(TypeError):
        PipelineOptions.for_stills(pases=3)           # a misspelt option is refused, not ignored
    assert TrackerOptions().one_euro == OneEuroOptions(0.05, 80.0, 1.0)
    with pytest.raises(ValueError):
        OneEuroOptions(d_cutoff=0)
