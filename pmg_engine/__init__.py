"""The PMG method: behaviors to text, keywords, soft embeddings, generation, scoring; no bot imports."""
