import os
import sys

# Let the tests import the fake hub helper next to them.
sys.path.insert(0, os.path.dirname(__file__))
