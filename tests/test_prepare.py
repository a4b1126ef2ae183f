import struct

import numpy as np
import pytest

from rag.prepare import _dequantise_q4_0


def test_q4_0_block_layout():
    # one block: fp16 scale 0.5, then 16 bytes: low nibbles are elements 0-15, high nibbles 16-31
    scale = np.float16(0.5).tobytes()
    packed = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    values = _dequantise_q4_0(scale + packed, 32)
    expected = [(q - 8) * 0.5 for q in range(16)] + [(q - 8) * 0.5 for q in range(15, -1, -1)]
    np.testing.assert_allclose(values, expected)
    assert struct.calcsize("<e") == 2


@pytest.mark.integration
def test_converted_e5_is_multilingual_and_loads_offline():
    from rag.embed import make_embedder
    from rag.settings import Settings

    emb = make_embedder(Settings())
    assert emb.dim == 384
    q = emb.embed_queries(["How many people were killed in the US strike?"])
    p = emb.embed_passages(["وقتل 5 من عناصر الفصائل المسلحة بقصف نفذته طائرات أمريكية.",
                            "ارتفعت أسعار النفط في الأسواق العالمية."])
    scores = p @ q[0]
    assert scores[0] > scores[1] + 0.05
