#!/usr/bin/env python3
"""show.py LABEL RULE [N]: the per-file findings of RULE with the statement's first lines."""
import json, sys, glob, os, random
os.chdir(os.environ.get('CORPUS', '/work/corpus'))  # where gather.sh and lint*.sh wrote
label, rule = sys.argv[1], sys.argv[2]; n = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
found = []
for f in sorted(glob.glob(f'out/{label}/incremental/*/*.json')):
    d = json.load(open(f)); proj = f.split('/')[3]
    for x in d['findings']:
        if x['rule'] == rule: found.append((proj, x))
random.seed(15); sample = found if len(found) <= n else random.sample(found, n)
print(len(found), 'findings;', len(sample), 'shown')
for proj, x in sample:
    path = f"projects/{proj}/{x['file']}" if not x['file'].startswith('/') else x['file']
    path = path if os.path.exists(path) else f"projects/{proj}/supabase/migrations/{os.path.basename(x['file'])}"
    lines = open(path, errors='replace').read().split('\n')
    i = x['line'] - 1
    print(f"--- {proj} {os.path.basename(x['file'])}:{x['line']}:{x['column']} {x.get('inside','')} | {x['message']}")
    print('\n'.join('    ' + l[:160] for l in lines[i:i+4]))
