from facegan_cli.cli import app

app(prog_name="facegan")
