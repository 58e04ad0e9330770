<?php
/**
 * Small drawing helpers of the page: times, links, the chart. Every value the page prints is
 * escaped with the server module's Escape::html5() (lib/Escape.php of modules/servers/jetpack,
 * loaded by jetpack_queue.php), in text and attribute contexts alike: Site URLs, domains and
 * error texts come from clients and from the partner API and are hostile.
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Module\Server\Jetpack\Escape;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Html
{
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
