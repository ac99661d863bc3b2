"""Seed files to articles: which files under the seeds directory are seed files and what
changed among them (tree, watch), reading one safely (files), its front matter and YAML
(front_matter, yaml_loader), its fields (fields) and Markdown body (bodies), and the whole
of one file as an article or the reason it cannot be one (seed_file).

May import the top-level `models`, `keys` and `messages`, and nothing else of feedserver:
the catalog, rendering and HTTP layers build on this one, never the other way round."""
