<?php
/**
 * Small drawing helpers of the page: times, links, the chart. Every value the page prints is
 * escaped with the server module's Escape::html5() (lib/Escape.php of modules/servers/jetpack,
 * loaded by jetpack_queue.php), in text and attribute contexts alike: Site URLs, domains and
 * error texts come from clients and from the partner API and are hostile. Also the page's
 * auto-refresh: its toggle and its script.
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Module\Server\Jetpack\Escape;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Html
{
    /**
     * The auto-refresh toggle (on unless the admin turned it off in this browser).
     *
     * @param int $seconds the refresh interval
     */
    public static function refreshToggle($seconds)
    {
        return '<p class="jq-refresh"><label><input type="checkbox" id="jq-refresh-toggle" checked> Refresh every '
            . (int) $seconds . ' s</label> <span id="jq-refresh-state"></span></p>';
    }

    /**
     * The auto-refresh: every $seconds the page's live part (#jq-live) is fetched again (a GET
     * of this URL, never a form re-sent) and swapped in, only while the tab is visible
     * (document.visibilityState, as Oban Web does; at once when it becomes visible again), the
     * toggle is on, and no form on the page is being filled (a field focused or changed) or a
     * "Retry all" batch is continuing. #jq-live's data-refreshes counts the swaps.
     *
     * @param int $seconds the refresh interval
     */
    public static function refreshScript($seconds)
    {
        return '<script>(function(){var ms=' . ((int) $seconds * 1000) . ',key="jq-refresh",live=document.getElementById("jq-live"),'
            . 'box=document.getElementById("jq-refresh-toggle"),say=document.getElementById("jq-refresh-state"),busy=false;'
            . 'if(!live||!box||!window.fetch){return;}'
            . 'try{box.checked=localStorage.getItem(key)!=="off";}catch(e){}'
            . 'box.addEventListener("change",function(){try{localStorage.setItem(key,box.checked?"on":"off");}catch(e){}note();});'
            . 'function filling(){var a=document.activeElement;if(a&&a!==box&&live.contains(a)&&/^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(a.tagName)){return true;}'
            . 'var f=live.querySelectorAll("input,select,textarea");for(var i=0;i<f.length;i++){var x=f[i];'
            . 'if(x.type==="hidden"){continue;}if(x.type==="checkbox"||x.type==="radio"){if(x.checked!==x.defaultChecked){return true;}continue;}'
            . 'if(x.tagName==="SELECT"){var d=0;for(var j=0;j<x.options.length;j++){if(x.options[j].defaultSelected){d=j;}}if(x.selectedIndex!==d){return true;}continue;}'
            . 'if(x.value!==x.defaultValue){return true;}}return false;}'
            . 'function why(){if(!box.checked){return "off";}if(document.visibilityState!=="visible"){return "paused while the tab is hidden";}'
            . 'if(document.getElementById("jq-continue")){return "paused while Retry all continues";}'
            . 'if(filling()){return "paused while a form is being filled";}return "";}'
            . 'function note(){var w=why();say.textContent=w===""?"":"("+w+")";return w;}'
            . 'function refresh(){if(busy||note()!==""){return;}busy=true;'
            . 'fetch(location.href,{credentials:"same-origin",headers:{"X-Requested-With":"XMLHttpRequest"}}).then(function(r){return r.ok?r.text():null;})'
            . '.then(function(t){busy=false;if(t===null||note()!==""){return;}'
            . 'var n=new DOMParser().parseFromString(t,"text/html").getElementById("jq-live");if(!n){return;}'
            . 'live.innerHTML=n.innerHTML;live.setAttribute("data-refreshes",String((+live.getAttribute("data-refreshes")||0)+1));'
            . 'live.setAttribute("data-refreshed-at",new Date().toISOString());})["catch"](function(){busy=false;});}'
            . 'setInterval(refresh,ms);document.addEventListener("visibilitychange",function(){if(document.visibilityState==="visible"){refresh();}else{note();}});'
            . 'live.addEventListener("input",note);live.addEventListener("change",note);note();})();</script>';
    }

    /**
     * A UTC DATETIME(6) as 'Y-m-d H:i:s UTC', or a dash.
     */
    public static function utc($datetime)
    {
        if ($datetime === null || $datetime === '') {
            return '—';
        }
        return Escape::html5(substr((string) $datetime, 0, 19)) . ' UTC';
    }

    /**
     * A link built from the module link and parameters (values URL-encoded, then escaped).
     */
    public static function link($base, array $params)
    {
        $params = array_filter($params, function ($v) {
            return $v !== null && $v !== '';
        });
        $sep = strpos($base, '?') === false ? '?' : '&';
        return Escape::html5($base . (count($params) > 0 ? $sep . http_build_query($params) : ''));
    }

    /**
     * A bar chart (inline SVG, no external assets) of outcomes per hour.
     *
     * @param array $buckets from Queries::outcomesPerHour()
     */
    public static function chart(array $buckets)
    {
        $series = array(
            'done' => array('Done', '#2e7d32'),
            'failed' => array('Failed', '#c62828'),
            'retried' => array('Retried', '#ef6c00'),
            'waiting_dns' => array('Waiting on DNS', '#1565c0'),
        );
        $max = 1;
        foreach ($buckets as $b) {
            foreach (array_keys($series) as $k) {
                $max = max($max, (int) $b[$k]);
            }
        }
        $w = 960;
        $h = 180;
        $top = 10;
        $bottom = 30;
        $left = 40;
        $slot = ($w - $left) / max(1, count($buckets));
        $bar = max(1.0, ($slot - 4) / count($series));
        $plot = $h - $top - $bottom;
        $svg = '<svg class="jq-chart" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 ' . $w . ' ' . ($h + 20)
            . '" role="img" aria-label="Outcomes per hour over the last 24 hours">';
        $svg .= '<line x1="' . $left . '" y1="' . ($top + $plot) . '" x2="' . $w . '" y2="' . ($top + $plot) . '" stroke="#999"/>';
        $svg .= '<text x="' . ($left - 4) . '" y="' . ($top + 8) . '" font-size="10" text-anchor="end">' . $max . '</text>';
        $svg .= '<text x="' . ($left - 4) . '" y="' . ($top + $plot) . '" font-size="10" text-anchor="end">0</text>';
        foreach (array_values($buckets) as $i => $b) {
            $x0 = $left + $i * $slot + 2;
            $j = 0;
            foreach ($series as $k => $meta) {
                $v = (int) $b[$k];
                $bh = $v === 0 ? 0 : max(1.0, $plot * $v / $max);
                $svg .= sprintf(
                    '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %d</title></rect>',
                    $x0 + $j * $bar, $top + $plot - $bh, $bar, $bh, $meta[1], Escape::html5($b['hour']) . ' UTC', $meta[0], $v
                );
                $j++;
            }
            if ($i % 3 === 0) {
                $svg .= sprintf('<text x="%.1f" y="%d" font-size="10">%s</text>', $x0, $top + $plot + 14, Escape::html5(substr($b['hour'], 11, 5)));
            }
        }
        $lx = $left;
        foreach ($series as $meta) {
            $svg .= sprintf('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>',
                $lx, $h + 4, $meta[1], $lx + 14, $h + 13, Escape::html5($meta[0]));
            $lx += 130;
        }
        return $svg . '</svg>';
    }
}
