"""`python -m simlab.train {codec,lm,lora,controller,evaluate}`: the recipes without the main CLI."""
from simlab.train.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
