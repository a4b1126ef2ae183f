"""Benchmarks, one module each: `rag bench retrieval|answer|brief|speed`. They print figures side by side with a
previous configuration measured in the same run; they assert nothing (tests and gates do)."""
