"""`rag ingest --ray` on a local one-node Ray cluster (ray.init(num_cpus=2)) with the real embedder: the same index
as the plain ingest, and a rerun skips what was committed."""

import numpy as np
import pytest

from rag.cli import main
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_ray_ingest_builds_the_same_index_as_the_plain_path(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray", reason="Ray is the optional extra rag[scale]")
    from rag.embed import embedder_name
    from rag.settings import Settings
    from rag.store import LocalStore

    for name, extra in (("plain", []), ("ray", ["--ray"])):
        monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / name))
        assert main(["ingest", str(ROOT / "seeds"), *extra]) == 0
    capsys.readouterr()
    assert main(["ingest", str(ROOT / "seeds"), "--ray", "--json"]) == 0  # a rerun: nothing re-embedded
    assert '"chunks_embedded": 0' in capsys.readouterr().out
    name = embedder_name(Settings())
    plain, ray = LocalStore.open(tmp_path / "plain", name), LocalStore.open(tmp_path / "ray", name)
    ids = sorted(a.id for a in plain.articles())
    assert len(ids) == 5 and ids == sorted(a.id for a in ray.articles())
    for article_id in ids:
        assert plain.article(article_id) == ray.article(article_id)
        assert plain.chunks_of(article_id) == ray.chunks_of(article_id)
        for chunk in plain.chunks_of(article_id):
            assert np.allclose(plain.chunk_vector(chunk.id), ray.chunk_vector(chunk.id), atol=1e-5)
            ours, theirs = plain.sentences_of(chunk.id), ray.sentences_of(chunk.id)
            assert [s[:2] for s in ours] == [s[:2] for s in theirs]
            assert all(np.allclose(a[2], b[2], atol=1e-5) for a, b in zip(ours, theirs, strict=True))
