"""The territory composer of the maps ("Composer un territoire"): draft a CPTS in the browser.

A panel of every map lets a user click units (communes, arrondissements in Paris, Lyon and
Marseille) into named drafts, or start from an existing CPTS, a candidate territory or an extension;
it shows live the draft's population, ACI tier and maximum annual envelope (from the configured ACI
table), whether it is contiguous (from the pipeline's own adjacency), the existing CPTS it overlaps,
the share of each white-zone patch it covers and the supply indicators; drafts are kept in the
browser's ``localStorage`` and download as a perimeter table (:func:`pipeline.analysis.perimeters.
read_perimeter_table` reads it back) or as GeoJSON.

The page already carries each unit's code, name, population and shape (the ``communes`` layer);
this module adds only what the browser cannot derive: the adjacency restricted to the map's units,
the members of each territory and white-zone patch (as page unit indices), the ACI table and, when a
practitioner file was given, the practitioners per unit. Integer lists use the maps' compact code
(:func:`pipeline.outputs.maps.encode_ints`), sorted lists as differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..aci import funding_table
from ..analysis.adjacency import Adjacency
from ..analysis.indicators import PROFESSIONS_FR
from ..errors import PipelineError
from .maps import encode_ints
from .palette import DRAFT_STYLE, swatch

KIND_CODES = {"cpts_existante": "cpts", "candidate": "candidate", "extension": "extension"}
AVENANT_NOTE = {
    "2019": "montants de l'accord de 2019, antérieurs à l'avenant 2 (décembre 2021), non repris ici"
}


def encode_sorted(values) -> str:
    """A sorted list of non-negative integers as differences (the first from 0)."""
    v = np.asarray(values, dtype=np.int64)
    return encode_ints(np.diff(v, prepend=0)) if len(v) else ""


def aci_data(aci: dict) -> dict:
    """The configured ACI table as the browser needs it: tiers, bounds, totals, supplement, name."""
    table = funding_table(aci)
    vintage = str(aci["vintage"])
    source = aci["funding"][vintage].get("source", f"ACI {vintage}")
    return {
        "tiers": list(table.index),
        "bounds": [int(b) for b in aci["bounds"]],
        "up": [bool(u) for u in aci["bound_goes_up"]],
        "total": [int(v) for v in table["total"]],
        "supplement": [int(v) for v in table["supplement_soins_non_programmes"]],
        "source": source,
        "vintage": vintage,
        "note": AVENANT_NOTE.get(vintage, ""),
    }


@dataclass
class ComposerSource:
    """What every map's composer needs, prepared once per run; :meth:`data` slices it for one map.

    Parameters
    ----------
    coverage : DataFrame
        The run's units (``code_commune``, ``nom``, ``population``, ``cpts_ids``,
        ``id_zone_blanche``), in the order of ``adjacency``.
    adjacency : Adjacency
        The pipeline's adjacency of those units.
    groups : DataFrame
        ``id_territoire, code_commune`` of every existing CPTS, candidate and extension
        (:func:`pipeline.analysis.territories.territory_communes`).
    territories : DataFrame
        ``id_territoire, type_territoire, nom, population`` (existing CPTS included, with their
        counted population: the parquet's).
    zones : DataFrame
        ``id_zone_blanche, population``.
    aci : dict
        The ``[aci]`` settings.
    supply : DataFrame or None
        Per unit (coverage order), ``n_<profession>`` columns, when a practitioner file was given.
    """

    coverage: pd.DataFrame
    adjacency: Adjacency
    groups: pd.DataFrame
    territories: pd.DataFrame
    zones: pd.DataFrame
    aci: dict
    supply: pd.DataFrame | None = None

    @classmethod
    def of(cls, outputs, adjacency: Adjacency, *, aci: dict) -> ComposerSource:
        """From the export's :class:`pipeline.outputs.export.Outputs` and the run's adjacency."""
        from ..analysis.territories import territory_communes

        coverage = pd.DataFrame(outputs.coverage.drop(columns="geometry"))
        if adjacency.n != len(coverage):
            raise PipelineError(
                f"coverage.parquet has {len(coverage)} units but the communes table "
                f"{adjacency.n}: run `make coverage` again"
            )
        cpts = outputs.cpts.assign(type_territoire="cpts_existante").rename(
            columns={"cpts_id": "id_territoire", "cpts_nom": "nom"}
        )
        proposed = outputs.territories[outputs.territories["type_territoire"] != "cpts_existante"]
        columns = ["id_territoire", "type_territoire", "nom", "population"]
        supply = [f"n_{p}" for p in outputs.professions]
        return cls(
            coverage,
            adjacency,
            territory_communes(coverage, outputs.territories, outputs.members),
            pd.concat([cpts[columns], proposed[columns]], ignore_index=True),
            pd.DataFrame(outputs.white_zones[["id_zone_blanche", "population"]]),
            aci,
            outputs.indicators[supply] if outputs.supply_known else None,
        )

    def __post_init__(self):
        """Index the units, territories and white zones once, for :meth:`data`."""
        self.position = pd.Series(
            np.arange(len(self.coverage)), index=self.coverage["code_commune"].to_numpy()
        )
        self.neighbours = self.adjacency.matrix().tocsr()
        self.aci_table = aci_data(self.aci)
        self.population = self.coverage["population"].fillna(0).to_numpy(np.int64)
        self.names = self.coverage["nom"].to_numpy(dtype=object)
        self.codes = self.coverage["code_commune"].to_numpy(dtype=object)
        rows = self.groups.assign(_row=self.groups["code_commune"].map(self.position))
        self.group_rows = {
            tid: np.sort(part["_row"].dropna().to_numpy(np.int64))
            for tid, part in rows.groupby("id_territoire", sort=True)
        }
        self.zone_rows = self.coverage.reset_index(drop=True).groupby("id_zone_blanche").indices
        # each territory (zone) as plain values, and the pairs (unit row, territory number): a map
        # looks only at the territories (zones) that have a unit on it
        t = self.territories
        self._territories = list(
            zip(
                t["type_territoire"].tolist(),
                t["id_territoire"].tolist(),
                t["nom"].tolist(),
                t["population"].tolist(),
                [self.group_rows.get(i, np.empty(0, np.int64)) for i in t["id_territoire"]],
            )
        )
        self._territory_of = _pairs([m[4] for m in self._territories])
        self._zones = [
            (z, int(p), self.zone_rows.get(z, np.empty(0, np.int64)))
            for z, p in zip(
                self.zones["id_zone_blanche"].tolist(), self.zones["population"].tolist()
            )
        ]
        self._zone_of = _pairs([z[2] for z in self._zones])

    def data(self, rows: np.ndarray) -> dict:
        """The composer's data of a map whose ``communes`` layer draws the units at coverage
        positions ``rows`` (in that order).
        """
        rows = np.asarray(rows, dtype=np.int64)
        local = np.full(len(self.coverage), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        # each unit's later neighbours (in map order), as differences from the unit itself
        upper = sp.triu(self.neighbours[rows][:, rows], k=1).tocsr()
        upper.sort_indices()
        counts = np.diff(upper.indptr)
        previous = np.empty(len(upper.indices), np.int64)
        previous[1:] = upper.indices[:-1]
        previous[upper.indptr[:-1][counts > 0]] = np.flatnonzero(counts > 0)
        population, names, codes = self.population, self.names, self.codes
        groups = []
        for k in _present(self._territory_of, local):
            kind, tid, name, total, members = self._territories[k]
            inside = local[members] >= 0
            fixed = members[~inside]
            # [kind, id, name, members, then the part drawn on other maps or outside the run's
            # scope (counted, not editable): its population and its units' codes and names]
            group = [
                KIND_CODES[kind],
                tid,
                name if isinstance(name, str) and name else tid,
                encode_sorted(np.sort(local[members[inside]])),
                max(0, int(total) - int(population[members[inside]].sum())),
                [[codes[r], names[r]] for r in fixed],
            ]
            groups.append(group if group[5] else group[:5] if group[4] else group[:4])
        zones = []
        for k in _present(self._zone_of, local):
            zone, people, members = self._zones[k]
            inside = local[members]
            zones.append([zone, encode_sorted(np.sort(inside[inside >= 0])), people])
        out = {
            "adj": {
                "n": encode_ints(counts),
                "d": encode_ints(upper.indices.astype(np.int64) - previous),
            },
            "groups": groups,
            "zones": zones,
            "aci": self.aci_table,
        }
        if self.supply is not None:
            out["supply"] = [
                [
                    PROFESSIONS_FR.get(c[2:], c[2:]),
                    encode_ints(self.supply[c].fillna(0).to_numpy()[rows]),
                ]
                for c in self.supply.columns
            ]
        return out


def _pairs(members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(unit rows, owner numbers)`` of the owners' member lists, for :func:`_present`."""
    if not members:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    owner = np.repeat(np.arange(len(members)), [len(m) for m in members])
    return np.concatenate(members).astype(np.int64), owner


def _present(pairs: tuple[np.ndarray, np.ndarray], local: np.ndarray) -> np.ndarray:
    """The owners (in their order) with at least one unit on the map (``local`` >= 0)."""
    units, owner = pairs
    return np.unique(owner[local[units] >= 0])


def panel() -> str:
    """The panel's HTML, its style and its script (after the map's own script).

    Returns
    -------
    str
        HTML to append to a map page (:attr:`pipeline.outputs.maps.MapPage.addons`); the panel
        moves into the map's left column, under the search box.
    """
    draft = swatch(DRAFT_STYLE["fillColor"], DRAFT_STYLE["color"], width=2)
    return f"<style>{CSS}</style>{HTML.replace('{swatch}', draft)}\n<script>{JS}</script>"


CSS = """
.cpts-composer{overflow:auto;flex:0 1 auto}
.cpts-composer button{font:inherit;margin:1px}
.cpts-composer select{max-width:100%;font:inherit}.cpts-composer dl{margin:4px 0}
.cpts-composer dt{font-weight:bold;margin-top:3px}.cpts-composer dd{margin:0 0 0 8px}
.cpts-composer ul{margin:2px 0;padding-left:16px}
.cc-on .leaflet-container,.cc-on #map{cursor:pointer}
.cc-bad{color:#b00}.cc-good{color:#060}.cc-muted{color:#666}
"""

HTML = """<div class="cpts-panel cpts-composer" id="cc-panel" role="region" \
aria-label="Composer un territoire"><button id="cc-toggle" aria-expanded="false" \
aria-controls="cc-body"><b>Composer un territoire</b></button>
<div id="cc-body" hidden><p class="cc-muted">{swatch} Brouillon. Cliquer une commune (ou un \
arrondissement) pour l'ajouter ou la retirer ; au clavier : « Trouver une commune » puis Entrée.\
</p>
<div><label for="cc-draft">Brouillon : </label><select id="cc-draft"></select> \
<button id="cc-new">Nouveau</button><button id="cc-rename">Renommer</button>\
<button id="cc-delete">Supprimer</button></div>
<div><label for="cc-from">Partir de : </label><select id="cc-from"></select> \
<button id="cc-start">Modifier ce territoire</button></div>
<div><button id="cc-undo">Annuler</button><button id="cc-redo">Rétablir</button>\
<button id="cc-clear">Vider</button></div>
<div id="cc-figures" aria-live="polite"></div>
<div><button id="cc-csv">Télécharger CSV (périmètres)</button>\
<button id="cc-geojson">Télécharger GeoJSON</button></div></div></div>"""

JS = r"""(function () {
  var C = DATA.composer, map = window.cptsMap, api = map.cptsApi, ints = api.ints, esc = api.esc, num = api.num;
  var spec = DATA.layers.filter(function (l) { return l.code === "communes"; })[0];
  var codes = api.units.codes, names = api.units.names;
  var pops = api.column(spec.props.population_txt).map(function (t) { return +String(t).replace(/\D/g, "") || 0; });
  var index = {}, shape = {}, nb = codes.map(function () { return []; }), groups = {}, cptsOf = [], zoneOf = [];
  codes.forEach(function (c, u) { index[c] = u; shape[c] = api.units.shapes[u]; });
  $("cpts-left").appendChild($("cc-panel"));
  function sorted(s) { var j = 0; return ints(s).map(function (x) { return j += x; }); }
  var cnt = ints(C.adj.n), d = ints(C.adj.d), k = 0;
  cnt.forEach(function (m, u) { for (var t = 0, j = u; t < m; t++) { j += d[k++]; nb[u].push(j); nb[j].push(u); } });
  C.groups = C.groups.map(function (a) { return {k: a[0], id: a[1], nom: a[2], units: sorted(a[3]), fp: a[4] || 0, fc: a[5] || []}; });
  C.groups.forEach(function (g) {
    groups[g.id] = g;
    if (g.k === "cpts") g.units.forEach(function (u) { (cptsOf[u] = cptsOf[u] || []).push(g); });
  });
  C.zones.forEach(function (z) { sorted(z[1]).forEach(function (u) { zoneOf[u] = z; }); });
  var supply = (C.supply || []).map(function (s) { return [s[0], ints(s[1])]; });
  var KIND = {cpts: "CPTS existante", candidate: "Territoire candidat", extension: "Extension de CPTS"};
  var KEY = "cpts-composer:" + location.pathname, state, undo = [], redo = [], active = false;
  try { state = JSON.parse(localStorage.getItem(KEY)); } catch (e) { state = null; }
  if (!state || !state.drafts || !state.drafts.length) state = {cur: 0, drafts: [{nom: "Brouillon 1", units: [], from: ""}]};
  function $(id) { return document.getElementById(id); }
  function draft() { return state.drafts[state.cur]; }
  function save() { try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* private mode */ } }
  function change(fn) {
    undo.push(JSON.stringify(state)); redo = []; fn(draft()); draft().units.sort(); update();
  }
  function toggle(code) {
    if (index[code] === undefined) return;
    change(function (dr) {
      var at = dr.units.indexOf(code);
      if (at < 0) dr.units.push(code); else dr.units.splice(at, 1);
    });
  }
  function figures(dr) {
    var units = dr.units.map(function (c) { return index[c]; }).filter(function (u) { return u !== undefined; });
    var g = groups[dr.from], fixed = g ? g.fp : 0, pop = fixed, inside = {}, over = {}, zones = {};
    units.forEach(function (u) {
      pop += pops[u]; inside[u] = true;
      (cptsOf[u] || []).forEach(function (c) {  // the CPTS the draft started from is not its own overlap
        if (c.id === dr.from) return;
        var o = over[c.id] = over[c.id] || {g: c, pop: 0, n: 0}; o.pop += pops[u]; o.n++;
      });
      var z = zoneOf[u];
      if (z) { var o = zones[z[0]] = zones[z[0]] || {z: z, pop: 0, n: 0}; o.pop += pops[u]; o.n++; }
    });
    var pieces = 0, seen = {};
    units.forEach(function (u) {
      if (seen[u]) return;
      pieces++; seen[u] = true;
      for (var stack = [u]; stack.length;) nb[stack.pop()].forEach(function (v) { if (inside[v] && !seen[v]) { seen[v] = true; stack.push(v); } });
    });
    var m = money(pop);
    return {units: units, pop: pop, fixed: g ? g : null, pieces: pieces, over: over, zones: zones,
            tier: m.tier, total: m.total, supplement: m.supplement};
  }
  function money(pop) {  // the ACI tier of a population (as aci.assign_tier) and its amounts
    var A = C.aci, tier = 0;
    A.bounds.forEach(function (b, i) { tier += (A.up[i] ? pop >= b : pop > b) ? 1 : 0; });
    return {tier: A.tiers[tier], total: A.total[tier], supplement: A.supplement[tier]};
  }
  function row(label, value, id) { return "<dt>" + label + "</dt><dd id=\"" + id + "\">" + value + "</dd>"; }
  function render() {
    var dr = draft(), f = figures(dr), A = C.aci, h = "", n = f.units.length + (f.fixed ? f.fixed.fc.length : 0);
    h += row("Communes", num(n), "cc-n") + row("Population", num(f.pop) + " hab." + (f.fixed && f.fixed.fp ?
      " <span class=\"cc-muted\">(dont " + num(f.fixed.fp) + " hab. d'unités absentes de cette carte, non modifiables)</span>" : ""), "cc-pop");
    h += row("Palier ACI", n ? f.tier : "—", "cc-tier");
    h += row("Enveloppe annuelle max.", n ? num(f.total) + " €" : "—", "cc-env");
    h += row("Supplément soins non programmés (à part)", n ? num(f.supplement) + " €" : "—", "cc-supp");
    h += "<dd class=\"cc-muted\" id=\"cc-table\">Barème : " + esc(A.source) + (A.note ? " — " + esc(A.note) : "") + "</dd>";
    h += row("Contiguïté", !f.units.length ? "—" : f.pieces === 1 ? "<span class=\"cc-good\">contigu</span>" :
      "<span class=\"cc-bad\">non contigu (" + f.pieces + " morceaux)</span>", "cc-contig");
    var o = Object.keys(f.over).sort().map(function (id) { var x = f.over[id]; return "<li>" + esc(x.g.nom) + " : " + num(x.pop) + " hab. (" + x.n + " commune(s))</li>"; });
    h += row("CPTS existantes chevauchées", o.length ? "<ul>" + o.join("") + "</ul>" : "aucune", "cc-over");
    var z = Object.keys(f.zones).sort().map(function (id) { var x = f.zones[id], p = x.z[2] ? 100 * x.pop / x.z[2] : 0;
      return "<li>" + esc(id) + " : " + api.dec(p, 1) + " % de " + num(x.z[2]) + " hab. (" + x.n + " commune(s))</li>"; });
    h += row("Zones blanches couvertes", z.length ? "<ul>" + z.join("") + "</ul>" : "aucune", "cc-zones");
    var s = supply.map(function (p) { var c = 0; f.units.forEach(function (u) { c += p[1][u]; });
      return "<li>" + esc(p[0]) + " : " + num(c) + (f.pop ? " (" + api.dec(1e4 * c / f.pop, 1) + " pour 10 000 hab.)" : "") + "</li>"; });
    h += row("Offre de soins", s.length ? "<ul>" + s.join("") + "</ul>" : "indisponible (aucun fichier de praticiens fourni)", "cc-supply");
    var list = f.units.map(function (u) { return "<li>" + esc(names[u]) + " (" + codes[u] + ") <button data-code=\"" + codes[u] +
      "\" aria-label=\"Retirer " + esc(names[u]) + "\">×</button></li>"; });
    h += row("Unités du brouillon", list.length ? "<ul id=\"cc-list\">" + list.join("") + "</ul>" : "aucune", "cc-units");
    $("cc-figures").innerHTML = "<dl>" + h + "</dl>";
  }
  map.createPane("composer");
  map.getPane("composer").style.zIndex = 460;
  map.getPane("composer").style.pointerEvents = "none";
  map.createPane("cc-hover");
  map.getPane("cc-hover").style.zIndex = 462;
  map.getPane("cc-hover").style.pointerEvents = "none";
  var drawn = L.featureGroup().addTo(map), look = {pane: "composer", renderer: api.renderer("composer"), interactive: false, fillOpacity: 1};
  for (var key in DATA.draft) look[key] = DATA.draft[key];
  function draw() {  // only the draft's units: nothing else is restyled
    drawn.clearLayers();
    draft().units.forEach(function (c) { if (shape[c]) drawn.addLayer(L.polygon(shape[c].getLatLngs(), look)); });
  }
  var hover = null, hoverUnit = -1, pending = null, queued = false;
  map.on("mousemove", function (e) {  // the unit under the pointer, outlined (one shape, not a layer)
    if (!active) return;
    pending = e.latlng;
    if (queued) return;
    queued = true;
    requestAnimationFrame(function () {
      queued = false;
      var u = active ? api.unitAt(pending) : -1;
      if (u === hoverUnit) return;
      hoverUnit = u;
      if (hover) { map.removeLayer(hover); hover = null; }
      if (u >= 0) hover = L.polygon(api.units.shapes[u].getLatLngs(), {pane: "cc-hover", interactive: false, fill: false,
        color: DATA.draft.color, weight: 2, dashArray: "4 3"}).addTo(map);
    });
  });
  function update() {
    var sel = $("cc-draft");
    sel.innerHTML = state.drafts.map(function (dr, i) { return "<option value=\"" + i + "\">" + esc(dr.nom) + "</option>"; }).join("");
    sel.value = String(state.cur);
    $("cc-undo").disabled = !undo.length; $("cc-redo").disabled = !redo.length;
    render(); draw(); save();
  }
  $("cc-from").innerHTML = "<option value=\"\">— CPTS existante, candidat ou extension —</option>" + C.groups.map(function (g) {
    return "<option value=\"" + esc(g.id) + "\">" + esc(KIND[g.k] + " : " + g.nom) + "</option>"; }).join("");
  function open(on) {
    active = on; $("cc-body").hidden = !on;
    try { localStorage.setItem(KEY + ":ouvert", on ? "1" : ""); } catch (e) { /* private mode */ }
    $("cc-toggle").setAttribute("aria-expanded", String(on));
    document.body.classList.toggle("cc-on", on);  // no layer is switched on or restyled
    if (!on && hover) { map.removeLayer(hover); hover = null; hoverUnit = -1; }
  }
  $("cc-toggle").addEventListener("click", function () { open(!active); });
  map.on("click", function (e) {  // the unit under the click, found from its shape
    if (!active) return;
    var u = api.unitAt(e.latlng);
    if (u >= 0) toggle(codes[u]);
  });
  $("cc-figures").addEventListener("click", function (e) { var c = e.target.getAttribute("data-code"); if (c) toggle(c); });
  $("cc-draft").addEventListener("change", function () { state.cur = +$("cc-draft").value; undo = []; redo = []; update(); });
  function fresh(nom, units, from) {
    undo.push(JSON.stringify(state)); redo = [];
    state.drafts.push({nom: nom, units: units, from: from}); state.cur = state.drafts.length - 1; update();
  }
  $("cc-new").addEventListener("click", function () { fresh("Brouillon " + (state.drafts.length + 1), [], ""); });
  $("cc-rename").addEventListener("click", function () {
    var nom = window.prompt("Nom du brouillon", draft().nom);
    if (nom && nom.trim()) change(function (dr) { dr.nom = nom.trim(); });
  });
  $("cc-delete").addEventListener("click", function () {
    undo.push(JSON.stringify(state)); redo = [];
    state.drafts.splice(state.cur, 1);
    if (!state.drafts.length) state.drafts.push({nom: "Brouillon 1", units: [], from: ""});
    state.cur = Math.min(state.cur, state.drafts.length - 1); update();
  });
  $("cc-start").addEventListener("click", function () {
    var g = groups[$("cc-from").value];
    if (g) fresh(g.nom + " (modifié)", g.units.map(function (u) { return codes[u]; }).sort(), g.id);
  });
  $("cc-clear").addEventListener("click", function () { change(function (dr) { dr.units = []; dr.from = ""; }); });
  function step(from, to) { if (from.length) { to.push(JSON.stringify(state)); state = JSON.parse(from.pop()); update(); } }
  $("cc-undo").addEventListener("click", function () { step(undo, redo); });
  $("cc-redo").addEventListener("click", function () { step(redo, undo); });
  document.addEventListener("cpts-found", function (e) {  // the map's search found one unit
    if (active && e.detail.enter && draft().units.indexOf(e.detail.code) < 0) toggle(e.detail.code);
  });
  function slug(t) { return t.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "brouillon"; }
  function ids() {
    var used = {};
    return state.drafts.map(function (dr, i) { var id = slug(dr.nom); if (used[id]) id += "-" + (i + 1); used[id] = true; return id; });
  }
  function cell(t) {  // as pipeline.io.spreadsheet_safe: a formula-like text gets a leading '
    t = String(t);
    if (/^'*[=+\-@\t\r]/.test(t) && !/^[-+]?\d+([.,]\d+)?$/.test(t)) t = "'" + t;
    return /[;"\n]/.test(t) ? "\"" + t.replace(/"/g, "\"\"") + "\"" : t;
  }
  function csv() {
    var out = ["cpts_id;cpts_nom;code_commune;commune;partie"], id = ids();
    state.drafts.forEach(function (dr, i) {
      var f = figures(dr), rows = f.units.map(function (u) { return [codes[u], names[u]]; }).concat(f.fixed ? f.fixed.fc : []);
      rows.forEach(function (r) { out.push([id[i], dr.nom, r[0], r[1], ""].map(cell).join(";")); });
    });
    return out.join("\r\n") + "\r\n";
  }
  function ring(r) { var c = r.map(function (p) { return [p.lng, p.lat]; }); c.push(c[0]); return c; }
  function geojson() {
    var id = ids();
    return JSON.stringify({type: "FeatureCollection", features: state.drafts.map(function (dr, i) {
      var f = figures(dr), polys = [];
      f.units.forEach(function (u) { shape[codes[u]].getLatLngs().forEach(function (p) { polys.push(p.map(ring)); }); });
      return {type: "Feature", geometry: {type: "MultiPolygon", coordinates: polys}, properties: {cpts_id: id[i], cpts_nom: dr.nom,
        population: f.pop, palier: f.units.length ? f.tier : null, enveloppe_eur: f.units.length ? f.total : null,
        code_communes: f.units.map(function (u) { return codes[u]; }).join(";")}};
    })});
  }
  function download(text, name, type) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], {type: type}));
    a.download = name; document.body.appendChild(a); a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  $("cc-csv").addEventListener("click", function () { download("\ufeff" + csv(), "brouillons_cpts.csv", "text/csv;charset=utf-8"); });
  $("cc-geojson").addEventListener("click", function () { download(geojson(), "brouillons_cpts.geojson", "application/geo+json"); });
  window.cptsComposer = {toggle: toggle, open: open, money: money, csv: csv, geojson: geojson, state: function () { return state; }};
  update();
  try { if (localStorage.getItem(KEY + ":ouvert")) open(true); } catch (e) { /* private mode */ }
})();"""  # noqa: E501 (embedded JavaScript)
