"""Other projects' checkpoints in and facegan's networks out: `facegan import` (one module per foreign
project, each a sources.Source; importer.py is the driver) and `facegan export` (export.py). The only
package that names foreign projects."""
