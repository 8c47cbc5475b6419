#!/usr/bin/env python3
"""count.py LABEL: findings per rule, whole folder and per file; errors per project (whole)."""
import json, sys, glob, collections, os
os.chdir(os.environ.get('CORPUS', '/work/corpus'))  # where gather.sh and lint*.sh wrote
label = sys.argv[1]
def load(path):
    try: return json.load(open(path))
    except Exception: return None
whole = collections.Counter(); inc = collections.Counter(); per_project = {}
for f in glob.glob(f'out/{label}/whole/*.json'):
    d = load(f)
    if d is None: print('unreadable', f); continue
    per_project[os.path.basename(f)[:-5]] = (d['errors'], d['warnings'])
    for x in d['findings']: whole[(x['rule'], x['severity'])] += 1
for f in glob.glob(f'out/{label}/incremental/*/*.json'):
    d = load(f)
    if d is None: print('unreadable', f); continue
    for x in d['findings']: inc[(x['rule'], x['severity'])] += 1
for k in sorted(set(whole) | set(inc), key=lambda k: -inc[k]):
    print(f'{k[0]:45} {k[1]:8} per-file {inc[k]:5} whole {whole[k]:5}')
print()
for p, (e, w) in sorted(per_project.items(), key=lambda x: x[1]): print(f'{p:45} errors {e:4} warnings {w:4}')
