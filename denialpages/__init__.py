"""DenialHelp's landing-page generator: YAML and Markdown in, a static site out."""
